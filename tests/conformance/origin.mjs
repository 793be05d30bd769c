// The cache-tests origin server, listening on 127.0.0.1 on a port the OS chooses.
//
// http-cache-tests' own server.mjs listens on every interface on a fixed port; this is
// the same dispatch over the package's handlers, bound to loopback. It prints
// "listening <port>" once ready and serves until it is killed.
import http from 'http'

import handleConfig from 'http-cache-tests/server/handle-config.mjs'
import handleState from 'http-cache-tests/server/handle-state.mjs'
import handleTest from 'http-cache-tests/server/handle-test.mjs'

function handleMain (request, response) {
  const url = new URL(request.url, 'http://127.0.0.1/')
  const pathSegs = url.pathname.split('/')
  pathSegs.shift()
  const dispatch = pathSegs.shift()
  if (dispatch === 'config') {
    handleConfig(pathSegs, request, response)
  } else if (dispatch === 'test') {
    handleTest(pathSegs, request, response)
  } else if (dispatch === 'state') {
    handleState(pathSegs, request, response)
  } else {
    response.writeHead(404, { 'Content-Type': 'text/plain' })
    response.end('not found\n')
  }
}

const server = http.createServer(handleMain)
server.listen(0, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`)
})

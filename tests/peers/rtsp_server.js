// An RTSP server for the tests: publishers ANNOUNCE/RECORD on one port, players PLAY on another.
// usage: node rtsp_server.js <publish port> <play port> <first RTP port>
const RtspServer = require('rtsp-streaming-server').default;

const [serverPort, clientPort, rtpPortStart] = process.argv.slice(2).map(Number);
const server = new RtspServer({ serverPort, clientPort, rtpPortStart, rtpPortCount: 200 });
server
  .start()
  .then(() => console.log('ready'))
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });

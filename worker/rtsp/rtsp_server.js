// An RTSP server (npm rtsp-streaming-server): publishers ANNOUNCE/RECORD on one port, players
// PLAY on another; RTP over UDP from a range of ports.
// usage: node rtsp_server.js <publish port> <play port> <first RTP port> [<RTP port count>]
// With STREAMFLEET_RTSP_PUBLISH_PASSWORD set, publishers must log in as `streamfleet` with it
// (the node's worker is the only publisher of its own server).
const RtspServer = require('rtsp-streaming-server').default;

const [serverPort, clientPort, rtpPortStart, count] = process.argv.slice(2).map(Number);
const password = process.env.STREAMFLEET_RTSP_PUBLISH_PASSWORD;
const publishServerHooks = password
  ? { authentication: async (user, pass) => user === 'streamfleet' && pass === password }
  : {};
const server = new RtspServer({
  serverPort,
  clientPort,
  rtpPortStart,
  rtpPortCount: count || 200,
  publishServerHooks,
});
server
  .start()
  .then(() => console.log('ready'))
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });

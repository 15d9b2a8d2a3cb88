// The graphical console: noVNC (vendored from npm into vendor/novnc) over the
// WebSocket /api/vms/VM/vnc, which the server bridges to the worker's
// run/vnc.sock. A module of its own, so that the page works without it.
import RFB from './vendor/novnc/core/rfb.js';

let rfb = null;
window.hvmVnc = {
  state: 'idle',
  connect(url, target, onstate) {
    this.disconnect();
    const set = (s) => { window.hvmVnc.state = s; if (onstate) onstate(s); };
    set('connecting');
    rfb = new RFB(target, url);
    rfb.scaleViewport = true;
    rfb.addEventListener('connect', () => set('connected'));
    rfb.addEventListener('disconnect', () => { rfb = null; set('disconnected'); });
  },
  disconnect() {
    if (rfb) { const r = rfb; rfb = null; r.disconnect(); }
  },
};

// hvm web console: one page, no framework. Every figure comes from the JSON
// API, which is the CLI's --json (see src/web/api.c); the page polls it every
// two seconds, so changes made from a shell show up without a reload.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  // /api/changes is a stat() of the store's folders, no command: polled
  // often; the pages themselves (commands that lock each VM for a moment)
  // are fetched when it changes, after an action, and every FULL_MS.
  const POLL_MS = 1000, FULL_MS = 15000;
  let token = sessionStorage.getItem('hvm-token') || '';
  const m = /[#&]token=([^&]+)/.exec(location.hash);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem('hvm-token', token);
    history.replaceState(null, '', location.pathname + '#/');
  }

  const cur = { vm: null, running: false };
  // xterm.js (290 KB) loads beside the first API answers, not before them.
  let xterm = 'loading';
  const xs = document.createElement('script');
  xs.src = 'vendor/xterm/xterm.js';
  xs.onload = () => { xterm = 'ok'; if (cur.vm) consoleFor(cur.vm, cur.running); };
  xs.onerror = () => { xterm = 'missing'; };
  document.head.append(xs);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k.nodeType ? k : String(k));
    return e;
  }
  const seg = (s) => encodeURIComponent(s);
  async function api(method, path, body) {
    const r = await fetch('api/' + path, {
      method, headers: Object.assign({ Authorization: 'Bearer ' + token },
        body ? { 'Content-Type': 'application/json' } : {}),
      body: body ? JSON.stringify(body) : undefined,
    });
    let doc = {};
    try { doc = await r.json(); } catch (e) { doc = { error: 'HTTP ' + r.status }; }
    if (!r.ok) { const err = new Error(doc.error || ('HTTP ' + r.status)); err.status = r.status; throw err; }
    return doc;
  }
  function bytes(n) {
    if (n === null || n === undefined) return '';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + ' ' + u[i];
  }
  function duration(s) {
    if (s === undefined || s === null) return '';
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, mi = Math.floor(s / 60) % 60;
    return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + mi + 'm ' + (s % 60) + 's';
  }
  function status(text, bad) {
    $('status').textContent = text || '';
    $('status').className = bad ? 'error' : '';
  }

  // The modal question: text, an optional input and an optional checkbox.
  function ask(text, opts) {
    opts = opts || {};
    return new Promise((resolve) => {
      const d = $('ask');
      $('ask-text').textContent = text;
      $('ask-input-row').hidden = opts.input === undefined;
      $('ask-input').value = opts.input || '';
      $('ask-check-row').hidden = !opts.check;
      $('ask-check').checked = false;
      $('ask-check-text').textContent = opts.check || '';
      $('ask-ok').textContent = opts.ok || 'OK';
      d.onclose = () => resolve(d.returnValue === 'ok'
        ? { input: $('ask-input').value, check: $('ask-check').checked } : null);
      d.returnValue = '';
      d.showModal();
      if (opts.input !== undefined) $('ask-input').select();
    });
  }

  async function act(label, method, path, body) {
    status(label + '…');
    try {
      const r = await api(method, path, body);
      status(r.message || 'done');
    } catch (e) {
      status(e.message, true);
    }
    refresh();
  }

  // ---- the host page ----
  function hostPage(h, uptimes) {
    const vms = el('table', { id: 'vms' },
      el('tr', {}, ['Name', 'State', 'CPUs', 'Memory', 'Uptime', 'Drives', 'NICs', 'Checkpoints'].map((t) => el('th', {}, t))),
      h.vms.map((v) => el('tr', { 'data-vm': v.name },
        el('td', {}, el('a', { href: '#/vm/' + seg(v.name) }, v.name)),
        el('td', { class: 'state-' + v.state }, v.state), el('td', {}, v.cpus), el('td', {}, bytes(v.memory)),
        el('td', {}, duration(uptimes[v.name])), el('td', {}, v.drives), el('td', {}, v.nics), el('td', {}, v.checkpoints))));
    const sw = el('table', { id: 'switches' },
      el('tr', {}, ['Switch', 'Type', 'Bridge', 'State', 'Address', 'VMs'].map((t) => el('th', {}, t))),
      h.switches.map((s) => el('tr', {}, el('td', {}, s.name), el('td', {}, s.type), el('td', {}, s.bridge || ''),
        el('td', {}, s.state || ''), el('td', {}, s.address || ''), el('td', {}, (s.vms || []).join(', ')))));
    const st = h.store || {};
    return [
      el('h2', {}, 'Host ', h.hostname),
      el('p', {}, h.cpus + ' CPUs, ' + bytes(h.memory) + ' memory. Store ' + (st.path || '(default)') +
        (st.size ? ': ' + bytes(st.free) + ' free of ' + bytes(st.size) : '')),
      el('h2', {}, 'Virtual machines (' + h.vms.length + ')'), vms,
      el('h2', {}, 'Switches (' + h.switches.length + ')'), h.switches.length ? sw : el('p', {}, 'none'),
    ];
  }

  // ---- the VM page ----
  const POWER = [['start', ['Off', 'Saved']], ['stop', ['Running']], ['turn-off', ['Running', 'Paused']],
    ['save', ['Running', 'Paused']], ['pause', ['Running']], ['resume', ['Paused']]];
  function vmPage(v, cps) {
    const name = v.name;
    const power = el('p', { id: 'power' }, POWER.map(([verb, states]) => el('button', {
      id: 'power-' + verb, disabled: !states.includes(v.state),
      onclick: async () => {
        if (verb === 'turn-off' && !await ask('Turn off ' + name + '? The guest loses what it has not written.', { ok: 'Turn off' })) return;
        act(verb, 'POST', 'vms/' + seg(name) + '/' + verb);
      },
    }, verb)));
    const cfg = el('table', { id: 'config' }, [
      ['State', v.state + (v.uptime !== undefined ? ' for ' + duration(v.uptime) : '') + (v.accel ? ' (' + v.accel + ')' : '')],
      ['CPUs', v.cpus], ['Memory', bytes(v.memory)],
      ['Firmware', v.firmware ? v.firmware.type + (v.firmware.secure_boot ? ', Secure Boot' : '') : ''],
      ['Disk I/O', v.disk_io], ['Kernel', v.kernel || ''], ['Command line', v.cmdline || ''],
      ['Autostart', v.autostart ? (v.autostart.enabled ? 'on, delay ' + v.autostart.delay + ' s' : 'off') : ''],
      ['Autostop', v.autostop], ['Folder', v.folder], ['Created', v.created],
    ].map(([k, x]) => el('tr', {}, el('th', {}, k), el('td', {}, x))));
    const drives = el('table', { id: 'drives' },
      el('tr', {}, ['Slot', 'Leaf', 'Size', 'Chain (parents)'].map((t) => el('th', {}, t))),
      (v.drives || []).map((d) => el('tr', {}, el('td', {}, d.slot), el('td', {}, d.file), el('td', {}, bytes(d.size)),
        el('td', {}, d.error ? el('span', { class: 'error' }, d.error) : (d.parents || []).map((p) => el('div', {}, p))))));
    const nics = el('table', { id: 'nics' },
      el('tr', {}, ['MAC', 'Switch', 'VLAN', 'Model'].map((t) => el('th', {}, t))),
      (v.nics || []).map((n) => el('tr', {}, el('td', {}, n.mac), el('td', {}, n.switch || ''),
        el('td', {}, n.vlan || ''), el('td', {}, n.model || 'virtio'))));
    return [
      el('h2', {}, 'VM ', name, ' ', el('span', { class: 'state-' + v.state, id: 'vm-state' }, v.state)), power,
      cfg, el('h2', {}, 'Drives'), drives, el('h2', {}, 'Network adapters'), (v.nics || []).length ? nics : el('p', {}, 'none'),
      el('h2', {}, 'Checkpoints ', el('button', { id: 'revert', onclick: async () => {
        if (await ask('Revert ' + name + ' to its last checkpoint? What changed since is lost.', { ok: 'Revert' }))
          act('revert', 'POST', 'vms/' + seg(name) + '/revert');
      } }, 'revert')),
      tree(name, cps.tree || []),
    ];
  }

  function tree(vm, nodes) {
    const base = 'vms/' + seg(vm) + '/checkpoints';
    function node(n) {
      if (n.now) {
        return el('li', { class: 'now-item' }, el('span', { class: 'node now', id: 'cp-now' }, 'Now ',
          el('button', { id: 'take', onclick: async () => {
            const a = await ask('Take a checkpoint of ' + vm + '. Name (empty: the default):', { input: '', ok: 'Take' });
            if (a) act('take', 'POST', base, a.input ? { name: a.input } : {});
          } }, 'take checkpoint')));
      }
      const id = n.id;
      const current = (n.children || []).some((c) => c.now);
      const label = el('span', { class: 'node' + (current ? ' current' : ''), 'data-id': id, 'data-name': n.name },
        n.name, ' ', el('small', {}, n.created + (n.memory ? ' · memory ' + bytes(n.memory_size) : '')), ' ',
        el('button', { class: 'apply', onclick: async () => {
          const a = await ask('Apply "' + n.name + '"? The current state of ' + vm + ' is discarded unless a checkpoint of it is taken first.',
            { check: 'take a checkpoint of now first', ok: 'Apply' });
          if (a) act('apply', 'POST', base + '/' + seg(id) + '/apply', { take_first: a.check });
        } }, 'apply'),
        el('button', { class: 'rename', onclick: async () => {
          const a = await ask('New name of "' + n.name + '":', { input: n.name, ok: 'Rename' });
          if (a && a.input && a.input !== n.name) act('rename', 'POST', base + '/' + seg(id) + '/rename', { name: a.input });
        } }, 'rename'),
        el('button', { class: 'delete', onclick: async () => {
          const a = await ask('Delete checkpoint "' + n.name + '"? Its point in time is gone for good (its data is folded into its child).',
            { check: (n.children || []).some((c) => !c.now) ? 'with every checkpoint under it' : undefined, ok: 'Delete' });
          if (a) act('delete', 'DELETE', base + '/' + seg(id), { subtree: a.check });
        } }, 'delete'));
      return el('li', {}, label, n.children && n.children.length ? el('ul', {}, n.children.map(node)) : null);
    }
    return nodes.length ? el('ul', { class: 'tree', id: 'tree' }, nodes.map(node))
      : el('ul', { class: 'tree', id: 'tree' }, node({ now: true }));
  }

  // ---- the serial console ----
  let term = null, ws = null, wsVm = null, wsRetry = 0;
  function consoleFor(vm, running) {
    const pane = $('console-pane');
    pane.hidden = !vm;
    if (!vm || xterm !== 'ok') {
      if (vm) $('console-state').textContent = xterm === 'missing' ? '(xterm.js missing from this build)' : '';
      closeConsole();
      return;
    }
    if (!term) {
      // convertEol: hvm's own lines in the console log end in a bare LF.
      term = new Terminal({ convertEol: true, scrollback: 2000, fontSize: 13, rows: 24, cols: 100 });
      term.open($('terminal'));
      term.onData((d) => { if (ws && ws.readyState === 1) ws.send(d); });
    }
    if (wsVm !== vm) { closeConsole(); term.reset(); wsVm = vm; }
    if (!running) { $('console-state').textContent = '(the VM is not running)'; closeConsole(); return; }
    if (ws || Date.now() < wsRetry) return;
    ws = new WebSocket(wsUrl(vm, 'console'));
    ws.binaryType = 'arraybuffer';
    // Each connection begins with the log's tail: a clean screen for it.
    ws.onopen = () => { term.reset(); $('console-state').textContent = '(connected)'; };
    ws.onmessage = (e) => term.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data), () => term.scrollToBottom());
    ws.onclose = () => { ws = null; wsRetry = Date.now() + 1500; $('console-state').textContent = '(disconnected)'; };
  }
  // The graphical console, on demand (noVNC in vnc.js).
  let vncVm = null;
  function wsUrl(vm, what) {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
      location.pathname.replace(/[^/]*$/, '') + 'api/vms/' + seg(vm) + '/' + what + '?token=' + encodeURIComponent(token);
  }
  function vncFor(vm, running) {
    $('vnc-pane').hidden = !vm;
    $('vnc-connect').disabled = !running;
    if ((vncVm && vncVm !== vm) || !running) {
      if (window.hvmVnc) window.hvmVnc.disconnect();
      vncVm = null;
    }
    $('vnc-connect').onclick = () => {
      if (!window.hvmVnc) { $('vnc-state').textContent = '(noVNC missing from this build)'; return; }
      vncVm = vm;
      window.hvmVnc.connect(wsUrl(vm, 'vnc'), $('vnc-screen'), (s) => { $('vnc-state').textContent = '(' + s + ')'; });
    };
    $('vnc-disconnect').onclick = () => { if (window.hvmVnc) window.hvmVnc.disconnect(); vncVm = null; };
  }
  function closeConsole() {
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
  }
  // For tests and the curious: the text on the console's screen and scrollback.
  window.hvmConsoleText = () => {
    if (!term) return '';
    const b = term.buffer.active, lines = [];
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
    return lines.join('\n');
  };

  // ---- routing and polling ----
  let shown = '', timer = null, busy = false, generation = '', lastFull = 0, forced = true;
  function refresh() { forced = true; tick(); }
  async function tick() {
    clearTimeout(timer);
    if (busy) { timer = setTimeout(tick, 200); return; }
    busy = true;
    const route = location.hash.replace(/^#\/?/, '');
    try {
      let kids, key, vm = null, running = false;
      if (!token) throw Object.assign(new Error('no access token'), { status: 401 });
      // When a fetch is due anyway, the generation is fetched beside it.
      const due = forced || Date.now() - lastFull >= FULL_MS;
      const changes = api('GET', 'changes');
      if (!due) {
        const g = (await changes).generation;
        if (g === generation) { consoleFor(cur.vm, cur.running); return; }
      }
      changes.then((c) => { generation = c.generation; }).catch(() => {});
      forced = false, lastFull = Date.now();
      const mv = /^vm\/(.+)$/.exec(route);
      if (mv) {
        vm = decodeURIComponent(mv[1]);
        const [v, cps] = await Promise.all([api('GET', 'vms/' + seg(vm)), api('GET', 'vms/' + seg(vm) + '/checkpoints')]);
        running = v.state === 'Running' || v.state === 'Paused';
        const stable = Object.assign({}, v, { uptime: undefined });
        key = JSON.stringify([route, stable, cps, v.uptime === undefined ? 0 : Math.floor(v.uptime / 10)]);
        if (key !== shown) kids = vmPage(v, cps);
        $('where').textContent = ' / ' + vm;
      } else {
        const h = await api('GET', 'host');
        const up = {};
        await Promise.all(h.vms.filter((v) => v.state === 'Running' || v.state === 'Paused').map((v) =>
          api('GET', 'vms/' + seg(v.name)).then((s) => { up[v.name] = s.uptime; }).catch(() => {})));
        key = JSON.stringify([route, h, Object.keys(up)]);
        if (key !== shown) kids = hostPage(h, up);
        $('where').textContent = '';
      }
      if (kids) { $('main').replaceChildren(...kids); shown = key; if (!document.body.dataset.loaded) document.body.dataset.loaded = performance.now().toFixed(0); }
      cur.vm = vm, cur.running = running;
      consoleFor(vm, running);
      vncFor(vm, running);
    } catch (e) {
      if (e.status === 401) {
        $('main').replaceChildren(el('p', {}, 'This page needs the access token that "hvm web serve" printed.'),
          el('form', { onsubmit: (ev) => { ev.preventDefault(); token = $('tok').value.trim(); sessionStorage.setItem('hvm-token', token); shown = ''; refresh(); } },
            el('input', { id: 'tok', size: 50, placeholder: 'token' }), el('button', {}, 'Use')));
        shown = '';
      } else {
        status(e.message, true);
        forced = true;
      }
    } finally {
      busy = false;
      timer = setTimeout(tick, POLL_MS);
    }
  }
  window.addEventListener('hashchange', () => { shown = ''; status(''); refresh(); });
  refresh();
})();

// The Switchboard chat UI, built on the browser client module (/switchboard.js). No build step.
import { connect, newId } from '/switchboard.js';

const $ = (id) => document.getElementById(id);
const store = {
  get: (k, d) => { try { return JSON.parse(localStorage.getItem('switchboard.' + k)) ?? d; } catch { return d; } },
  set: (k, v) => localStorage.setItem('switchboard.' + k, JSON.stringify(v)),
};

const info = await fetch('/api/info').then((r) => r.json()).catch(() => ({ authEnabled: false }));
const rooms = new Map(); // room -> { messages: [], members: Map, unread, oldest, more, pending: Map }
let active = null;
let client = null;

function userId() {
  let id = store.get('user', null);
  if (!id) { id = 'u-' + (crypto.randomUUID ? crypto.randomUUID() : Math.random().toString(16).slice(2)); store.set('user', id); }
  return id; // one id per browser: two tabs are one member
}

async function askIdentity(error) {
  const dialog = $('identity');
  $('name-input').value = store.get('name', '');
  $('token-label').hidden = !info.authEnabled;
  $('token-input').value = store.get('token', '');
  $('identity-error').hidden = !error;
  $('identity-error').textContent = error || '';
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener('close', resolve, { once: true }));
  const name = $('name-input').value.trim() || 'Anonymous';
  store.set('name', name);
  if (info.authEnabled) store.set('token', $('token-input').value.trim());
}

function time(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// The last offset seen per room, kept across reloads: unread counts are what came after it.
const seen = {
  get: (room) => store.get('seen', {})[room],
  set: (room, offset) => { const all = store.get('seen', {}); if (!(all[room] >= offset)) { all[room] = offset; store.set('seen', all); } },
  forget: (room) => { const all = store.get('seen', {}); delete all[room]; store.set('seen', all); },
};

function isMine(m) { return m.from !== undefined ? m.from === client?.user : m.pending === true; }

function dayOf(iso) { return iso ? new Date(iso).toDateString() : null; }

function dateNode(iso) {
  const li = document.createElement('li'); li.className = 'date';
  const span = document.createElement('span');
  span.textContent = new Date(iso).toLocaleDateString([], { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
  li.append(span); return li;
}

// Messages with a date line wherever the (local) day changes.
function withDates(items) {
  const out = []; let day = null;
  for (const i of items) {
    if (!i.notice && i.time && dayOf(i.time) !== day) { day = dayOf(i.time); out.push(dateNode(i.time)); }
    out.push(i.notice ? noticeNode(i.notice) : messageNode(i));
  }
  return out;
}

function messageNode(m, pending = false) {
  const li = document.createElement('li');
  if (pending) li.classList.add('pending');
  if (pending || isMine(m)) li.classList.add('mine');
  li.dataset.id = m.id;
  if (m.offset) li.dataset.offset = m.offset;
  const meta = document.createElement('span'); meta.className = 'meta'; meta.textContent = m.time ? time(m.time) : '';
  const name = document.createElement('span'); name.className = 'name'; name.textContent = m.name;
  const text = document.createElement('span'); text.className = 'text'; text.textContent = m.text; // text, never HTML
  li.append(meta, name, text);
  return li;
}

function noticeNode(text) {
  const li = document.createElement('li'); li.className = 'notice'; li.textContent = text; return li;
}

function room(name) {
  if (!rooms.has(name)) rooms.set(name, { items: [], members: new Map(), unread: 0, oldest: null, more: false, pending: new Map() });
  return rooms.get(name);
}

function renderRooms() {
  const list = $('room-list');
  list.replaceChildren(...[...rooms.keys()].map((name) => {
    const li = document.createElement('li');
    li.dataset.room = name;
    if (name === active) li.classList.add('active');
    const label = document.createElement('span'); label.textContent = '#' + name;
    const badge = document.createElement('span'); badge.className = 'badge'; badge.textContent = rooms.get(name).unread || '';
    li.append(label, badge);
    li.onclick = () => { select(name); document.body.classList.remove('show-rooms'); };
    return li;
  }));
}

function renderMembers() {
  const r = active && rooms.get(active);
  $('member-list').replaceChildren(...(r ? [...r.members.entries()] : []).sort((a, b) => a[1].localeCompare(b[1])).map(([user, name]) => {
    const li = document.createElement('li'); li.textContent = name; li.dataset.user = user; return li;
  }));
}

function renderMessages() {
  const r = rooms.get(active);
  $('room-title').textContent = '#' + active;
  $('messages').replaceChildren(...withDates(r.items), ...[...r.pending.values()].map((p) => messageNode(p, true)));
  $('load-earlier').hidden = !r.more;
  scrollDown(true);
}

function scrollDown(force) {
  const s = $('scroller');
  if (force || s.scrollHeight - s.scrollTop - s.clientHeight < 80) s.scrollTop = s.scrollHeight;
}

function select(name) {
  active = name;
  if (!name) { renderRooms(); $('room-title').textContent = ''; $('messages').replaceChildren(); renderMembers(); return; }
  room(name).unread = 0;
  const last = room(name).items.findLast((i) => i.offset);
  if (last) seen.set(name, last.offset);
  renderRooms(); renderMembers(); renderMessages();
  $('text').focus();
}

async function join(name) {
  const r = room(name);
  const joined = await client.join(name);
  if (seen.get(name) === undefined) seen.set(name, joined.offset); // a room new to this browser: its history is not "unread"
  r.members = new Map(joined.members.map((m) => [m.user, m.name]));
  r.oldest = joined.from + 1;
  r.more = joined.from > 0;
  const list = store.get('rooms', ['general']);
  if (!list.includes(name)) store.set('rooms', [...list, name]);
  renderRooms();
  if (name === active) { renderMembers(); renderMessages(); }
}

function onMessage(m) {
  const r = room(m.room);
  r.items.push(m);
  if (r.oldest === null || m.offset < r.oldest) r.oldest = m.offset;
  const pending = r.pending.get(m.id);
  r.pending.delete(m.id);
  if (m.room === active) {
    seen.set(m.room, m.offset);
    if (pending) document.querySelector(`#messages li.pending[data-id="${CSS.escape(m.id)}"]`)?.remove();
    const list = $('messages');
    const firstPending = list.querySelector('li.pending');
    const previous = r.items.slice(0, -1).findLast((i) => i.time);
    if (m.time && dayOf(m.time) !== dayOf(previous?.time)) list.insertBefore(dateNode(m.time), firstPending);
    list.insertBefore(messageNode(m), firstPending);
    scrollDown(false);
  } else if (!(m.offset <= (seen.get(m.room) ?? 0)) && !isMine(m)) {
    r.unread++;
    renderRooms();
  }
}

function showState({ state, retryAt }) {
  $('reconnect-now').hidden = state !== 'reconnecting';
  document.body.classList.toggle('offline', state !== 'connected'); // who is here is unknown until we are back
  $('members-stale').hidden = state === 'connected';
  const el = $('state');
  el.className = 'state ' + state;
  if (state === 'reconnecting' && retryAt) {
    const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    el.textContent = `reconnecting in ${seconds}s`;
  } else {
    el.textContent = state === 'closed' ? 'offline' : state;
  }
}

async function start() {
  if (!store.get('name', null) || (info.authEnabled && !store.get('token', null))) await askIdentity();
  $('me').textContent = store.get('name', 'Anonymous');
  client = connect('/hub', { name: store.get('name', 'Anonymous'), user: info.authEnabled ? undefined : userId(), token: info.authEnabled ? store.get('token', '') : undefined });
  window.switchboard = client; // for the console
  client.on('state', showState);
  setInterval(() => showState(client), 1000);
  client.on('message', onMessage);
  client.on('presence', (p) => {
    const r = room(p.room);
    if (p.type === 'member_joined') r.members.set(p.user, p.name); else r.members.delete(p.user);
    if (p.room === active) renderMembers();
  });
  client.on('joined', (j) => {
    const r = room(j.room);
    r.members = new Map(j.members.map((m) => [m.user, m.name]));
    if (j.room === active) renderMembers();
  });
  client.on('removed', (r) => { // the server took us out of a room (e.g. a refreshed token no longer allows it)
    rooms.delete(r.room);
    store.set('rooms', store.get('rooms', ['general']).filter((n) => n !== r.room));
    if (active === r.room) select([...rooms.keys()][0]);
    renderRooms();
    $('messages').append(noticeNode(`Removed from #${r.room}: ${r.message}`));
  });
  client.on('gap', (g) => {
    const r = room(g.room);
    r.items.push({ notice: `${g.to - g.from + 1} older messages are no longer available` });
    if (g.room === active) $('messages').append(noticeNode(r.items.at(-1).notice));
  });
  client.on('disconnect', (d) => {
    if (d.code === 4001 || (info.authEnabled && client.state !== 'connected' && d.code === 1006 && !client.connectionId)) {
      client.close();
      askIdentity('Your access token was refused or has expired.').then(() => location.reload());
    }
  });

  const saved = store.get('rooms', ['general']);
  for (const name of saved) room(name);
  active = saved[0] ?? null;
  renderRooms(); if (active) renderMessages();
  await new Promise((resolve) => { if (client.state === 'connected') resolve(); else { const off = client.on('state', (s) => { if (s.state === 'connected') { off(); resolve(); } }); } });
  for (const name of saved) await join(name).catch((e) => console.warn('join', name, e));
}

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value;
  if (!text.trim() || !active) return;
  $('text').value = '';
  const r = room(active);
  const id = newId();
  const pending = { id, name: store.get('name', 'Anonymous'), text, room: active };
  r.pending.set(id, pending);
  $('messages').append(messageNode(pending, true));
  scrollDown(true);
  client.publish(active, text, { id }).catch((err) => {
    r.pending.delete(id);
    document.querySelector(`#messages li.pending[data-id="${CSS.escape(id)}"]`)?.remove();
    $('messages').append(noticeNode('Not sent: ' + err.message));
  });
});

$('text').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('composer').requestSubmit(); }
});

$('join-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = $('join-room').value.trim();
  if (!name) return;
  $('join-room').value = '';
  room(name);
  select(name);
  await join(name).catch((err) => {
    rooms.delete(name);
    store.set('rooms', store.get('rooms', ['general']).filter((r) => r !== name));
    select([...rooms.keys()][0]);
    $('messages').append(noticeNode(`Cannot join #${name}: ${err.message}`));
  });
});

$('load-earlier').addEventListener('click', async () => {
  const r = room(active);
  const page = await client.history(active, { before: r.oldest, limit: 50 });
  r.items.unshift(...page.messages);
  if (page.messages.length) r.oldest = page.messages[0].offset;
  r.more = page.more;
  const s = $('scroller'); const before = s.scrollHeight;
  $('messages').replaceChildren(...withDates(r.items), ...[...r.pending.values()].map((p) => messageNode(p, true)));
  $('load-earlier').hidden = !r.more;
  s.scrollTop += s.scrollHeight - before;
});

$('me').addEventListener('click', async () => { await askIdentity(); location.reload(); });
$('reconnect-now').addEventListener('click', () => client.reconnectNow());
$('leave-room').addEventListener('click', async () => {
  const name = active;
  if (!name) return;
  rooms.delete(name);
  store.set('rooms', store.get('rooms', ['general']).filter((r) => r !== name));
  seen.forget(name);
  select([...rooms.keys()][0]);
  await client.leave(name).catch(() => {}); // offline: it is simply not rejoined
});
$('toggle-rooms').addEventListener('click', () => document.body.classList.toggle('show-rooms'));

start();

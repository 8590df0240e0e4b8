// switchboard.js — browser client for the Switchboard hub protocol (docs/protocol.md).
//
//   import { connect } from '/switchboard.js';
//   const client = connect('ws://127.0.0.1:8000/hub', { name: 'Alice' });
//   client.on('message', m => console.log(m.room, m.offset, m.name, m.text));
//   client.on('state', s => console.log(s.state, s.retryAt));
//   await client.join('general');
//   await client.publish('general', 'hello');        // resolves with the ack once stored
//
// It reconnects by itself (exponential backoff with full jitter), rejoins every room from the last offset it
// delivered (so each message is delivered once, in order), and keeps publishes made while offline in a queue,
// sending them after reconnecting with the same ids (so each is stored once).

const DEFAULTS = { initialDelay: 500, maxDelay: 30000, multiplier: 2 };
const REQUEST_WAIT = 15000; // how long a command issued while not connected waits for the connection (options.requestTimeout)

/**
 * A new message id: a version 7 UUID (RFC 9562) as 32 hex digits, beginning with the time in milliseconds, so ids sort
 * by the time they were made. The server finds retries through an index by (room, user, id); ids that sort by time are
 * added at the end of it, random ones anywhere (about three times the store's work per publish: docs/protocol.md).
 */
export function newId() {
  const b = new Uint8Array(16);
  if (globalThis.crypto?.getRandomValues) crypto.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  const ms = Date.now();
  for (let i = 0; i < 6; i++) b[i] = Math.floor(ms / 2 ** (8 * (5 - i))) % 256; // 48-bit big-endian milliseconds
  b[6] = (b[6] & 0x0f) | 0x70; // version 7
  b[8] = (b[8] & 0x3f) | 0x80; // variant 10
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export class SwitchboardClient {
  #url; #options; #ws = null; #listeners = new Map(); #rooms = new Map(); #pending = new Map();
  #requests = new Map(); #queued = []; #nextRef = 0; #attempt = 0; #timer = null; #closed = false;

  /** @param {string} url the hub endpoint, e.g. ws://host:8000/hub  @param {{name?:string,user?:string,token?:string,reconnect?:object}} options */
  constructor(url, options = {}) {
    this.#url = url;
    this.#options = { ...options, reconnect: { ...DEFAULTS, ...(options.reconnect || {}) } };
    /** 'connecting' | 'connected' | 'reconnecting' | 'closed' */
    this.state = 'connecting';
    /** when the next reconnect attempt happens (ms since epoch), while reconnecting */
    this.retryAt = null;
    this.#open();
  }

  /** Subscribes to 'message', 'presence' (member_joined / member_left), 'joined', 'gap', 'lagging' (catching up from history), 'reset', 'removed' (the server took this client out of a room: room, reason, message), 'error', 'state', 'disconnect'. Returns an unsubscribe function. */
  on(event, handler) {
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(handler);
    return () => this.#listeners.get(event).delete(handler);
  }

  #emit(event, value) {
    for (const h of this.#listeners.get(event) || []) {
      try { h(value); } catch (e) { console.error(e); }
    }
  }

  #setState(state) {
    this.state = state;
    this.#emit('state', { state, retryAt: this.retryAt });
  }

  #open() {
    const u = new URL(this.#url, location.href);
    if (u.protocol === 'http:') u.protocol = 'ws:';
    if (u.protocol === 'https:') u.protocol = 'wss:';
    if (this.#options.name) u.searchParams.set('name', this.#options.name);
    if (this.#options.user) u.searchParams.set('user', this.#options.user);
    if (this.#options.token) u.searchParams.set('access_token', this.#options.token);
    const ws = new WebSocket(u);
    this.#ws = ws;
    ws.onmessage = (e) => this.#receive(JSON.parse(e.data));
    ws.onclose = (e) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      for (const r of this.#requests.values()) r.reject(new Error('connection lost'));
      this.#requests.clear();
      for (const r of this.#rooms.values()) r.firstJoin = false; // joined or not, such a room is (re)joined on reconnect
      this.#emit('disconnect', { code: e.code, reason: e.reason });
      if (this.#closed) { this.#setState('closed'); return; }
      this.#scheduleReconnect();
    };
  }

  #scheduleReconnect() {
    const { initialDelay, maxDelay, multiplier } = this.#options.reconnect;
    this.#attempt++;
    const backoff = Math.min(maxDelay, initialDelay * Math.pow(multiplier, this.#attempt - 1));
    const delay = Math.random() * backoff; // full jitter: reconnecting clients spread out
    this.retryAt = Date.now() + delay;
    this.#setState('reconnecting');
    this.#timer = setTimeout(() => { this.#timer = null; this.#open(); }, delay);
  }

  /** Tries to reconnect now instead of waiting for the backoff. */
  reconnectNow() {
    if (this.state !== 'reconnecting' || !this.#timer) return;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#open();
  }

  #send(obj) {
    if (this.#ws && this.#ws.readyState === WebSocket.OPEN) { this.#ws.send(JSON.stringify(obj)); return true; }
    return false;
  }

  // A command issued before the connection is up (right after connect(), or while reconnecting) waits for it, up to
  // options.requestTimeout (15 s), instead of failing at once.
  #request(obj) {
    const ref = 'r' + (++this.#nextRef);
    return new Promise((resolve, reject) => {
      if (this.#closed) { reject(new Error('closed')); return; }
      if (this.state === 'connected' && this.#send({ ...obj, ref })) { this.#requests.set(ref, { resolve, reject }); return; }
      const entry = { obj, ref, resolve, reject };
      entry.timer = setTimeout(() => {
        this.#queued = this.#queued.filter((q) => q !== entry);
        reject(new Error('not connected: gave up waiting for the connection'));
      }, this.#options.requestTimeout ?? REQUEST_WAIT);
      this.#queued.push(entry);
    });
  }

  #flushQueued() {
    const queued = this.#queued;
    this.#queued = [];
    for (const q of queued) {
      clearTimeout(q.timer);
      this.#requests.set(q.ref, q);
      if (!this.#send({ ...q.obj, ref: q.ref })) { this.#requests.delete(q.ref); q.reject(new Error('connection lost')); }
    }
  }

  #joinCommand(room) {
    const r = this.#rooms.get(room);
    const cmd = { type: 'join', room };
    if (r && r.offset >= 0) { cmd.since = r.offset; if (r.epoch) cmd.epoch = r.epoch; }
    return cmd;
  }

  #receive(m) {
    switch (m.type) {
      case 'welcome':
        this.#attempt = 0;
        this.retryAt = null;
        this.connectionId = m.connectionId;
        this.user = m.user;
        this.name = m.name;
        this.#setState('connected');
        for (const [room, r] of this.#rooms) if (!r.firstJoin) this.#send({ ...this.#joinCommand(room), ref: 'rejoin' });
        this.#flushQueued(); // commands issued while not connected (a first join among them)
        for (const [id, p] of this.#pending) this.#send({ type: 'publish', room: p.room, text: p.text, id, ref: 'p:' + id });
        return;
      case 'message': {
        const r = this.#rooms.get(m.room);
        if (!r || m.offset <= r.offset) return; // not joined, or already delivered before a reconnect
        r.offset = m.offset;
        this.#emit('message', m);
        return;
      }
      case 'joined': {
        const r = this.#rooms.get(m.room);
        if (r) {
          if (m.epochChanged) { this.#emit('reset', { room: m.room, epoch: m.epoch }); r.offset = m.from; }
          if (r.offset < 0) r.offset = m.from;
          r.epoch = m.epoch;
        }
        this.#emit('joined', m);
        break;
      }
      case 'ack': {
        const p = this.#pending.get(m.id);
        if (p) { this.#pending.delete(m.id); p.resolve(m); }
        return;
      }
      case 'member_joined': case 'member_left':
        this.#emit('presence', m);
        return;
      case 'left':
        if (!m.ref) { this.#rooms.delete(m.room); this.#emit('removed', m); return; } // the server took us out (reason, message)
        break;
      case 'reset': { // the room's history was deleted: offsets start over in a new epoch
        const r = this.#rooms.get(m.room);
        if (r) { r.epoch = m.epoch; r.offset = m.offset; }
        this.#emit('reset', { room: m.room, epoch: m.epoch });
        return;
      }
      case 'gap':
        this.#emit('gap', m);
        return;
      case 'lagging': // fell behind the live stream: the server replays from history, nothing is lost
        this.#emit('lagging', m);
        return;
      case 'error':
        if (m.ref && m.ref.startsWith('p:')) {
          const id = m.ref.slice(2);
          const p = this.#pending.get(id);
          if (p) { this.#pending.delete(id); p.reject(Object.assign(new Error(m.message), { code: m.code })); }
          return;
        }
        this.#emit('error', m);
        break;
    }
    if (m.ref && this.#requests.has(m.ref)) {
      const r = this.#requests.get(m.ref);
      this.#requests.delete(m.ref);
      if (m.type === 'error') r.reject(Object.assign(new Error(m.message), { code: m.code })); else r.resolve(m);
    }
  }

  /** Joins a room; resolves with the 'joined' reply. Messages after `since` (or recent history) follow, then live ones. */
  join(room, { since } = {}) {
    const fresh = !this.#rooms.has(room);
    if (fresh) this.#rooms.set(room, { offset: since ?? -1, epoch: null, firstJoin: true }); // joined by this request, not by a rejoin
    return this.#request(this.#joinCommand(room)).then((joined) => {
      const r = this.#rooms.get(room);
      if (r) r.firstJoin = false;
      return joined;
    }, (error) => {
      if (fresh && this.#rooms.get(room)?.firstJoin) this.#rooms.delete(room); // never joined: not a room to rejoin
      throw error;
    });
  }

  /** Leaves a room. */
  leave(room) {
    this.#rooms.delete(room);
    return this.#request({ type: 'leave', room });
  }

  /** Publishes; resolves with the ack once stored. Queued while offline and sent after reconnecting (same id: stored once). */
  publish(room, text, { id = newId() } = {}) {
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { room, text, resolve, reject });
      this.#send({ type: 'publish', room, text, id, ref: 'p:' + id });
    });
  }

  /** Messages before `before` (newest when omitted), ascending: { messages, more }. */
  history(room, { before, limit = 50 } = {}) {
    const cmd = { type: 'history', room, limit };
    if (before !== undefined) cmd.before = before;
    return this.#request(cmd);
  }

  /** Publishes waiting for an ack (sent or queued). */
  get pendingCount() { return this.#pending.size; }

  /** Closes for good. */
  close() {
    this.#closed = true;
    for (const q of this.#queued) { clearTimeout(q.timer); q.reject(new Error('closed')); }
    this.#queued = [];
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#ws) this.#ws.close(1000); else this.#setState('closed');
  }
}

/** Connects to a hub endpoint (default: this page's server, /hub). */
export function connect(url = '/hub', options = {}) {
  return new SwitchboardClient(url, options);
}

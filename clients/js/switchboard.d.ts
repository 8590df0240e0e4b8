// Type declarations for switchboard.js, the browser client of the Switchboard hub protocol (docs/protocol.md).
// The server's messages are defined once, in Switchboard.Hub.Messages (C# records); a test checks every interface
// below that has a `type` against that definition: the same fields, types and optional ones.
// Fields the server adds in a later version are ignored by the client.

/** The first message on every connection. */
export interface Welcome {
  type: 'welcome';
  connectionId: string;
  user: string;
  name: string;
  /** ISO 8601, UTC. */
  serverTime: string;
  protocol: number;
}

/** A member of a room. */
export interface Member {
  user: string;
  name: string;
}

/** A room's message, as stored: its offset in the room, the publisher's id for it, who sent it, what and when. */
export interface HistoryItem {
  offset: number;
  id: string;
  from: string;
  name: string;
  text: string;
  /** ISO 8601, UTC, set by the server. */
  time: string;
}

/** A message in a joined room, live or caught up, in offset order. */
export interface HubMessage extends HistoryItem {
  type: 'message';
  room: string;
}

/** The reply to join. */
export interface Joined {
  type: 'joined';
  ref?: string;
  room: string;
  epoch: string;
  /** The room's last offset when it was joined. */
  offset: number;
  /** Messages after this offset follow. */
  from: number;
  members: Member[];
  /** The room's history was lost and started over since the epoch the client had. */
  epochChanged?: boolean;
}

/** The acknowledgement of a publish: the message is stored. */
export interface Ack {
  type: 'ack';
  ref?: string;
  id: string;
  room: string;
  offset: number;
  /** A message with this id was already stored; this publish stored nothing. */
  duplicate?: boolean;
}

/** The reply to history. */
export interface History {
  type: 'history';
  ref?: string;
  room: string;
  epoch: string;
  messages: HistoryItem[];
  /** Older messages exist: ask again with before = the first offset. */
  more: boolean;
}

/** The reply to leave; also sent without ref when the server takes the client out of a room (reason, message). */
export interface Left {
  type: 'left';
  ref?: string;
  room: string;
  /** An error code, when the client did not ask (e.g. a refreshed token no longer allows the room). */
  reason?: string;
  message?: string;
}

export interface PresenceChange {
  type: 'member_joined' | 'member_left';
  room: string;
  user: string;
  name: string;
}

/** Messages from..to of a room are gone (retention) and will never be delivered. */
export interface Gap {
  type: 'gap';
  room: string;
  from: number;
  to: number;
  reason: string;
}

/** This connection fell behind the live stream; everything after offset is replayed from history, then live again. */
export interface Lagging {
  type: 'lagging';
  room: string;
  offset: number;
}

/** The server took this client out of a room (e.g. a refreshed token no longer allows it): a left without ref. */
export type Removed = Left;

/** The room's history was deleted: offsets start over after offset, in the new epoch. */
export interface Reset {
  type: 'reset';
  room: string;
  epoch: string;
  offset: number;
}

/** The reply to ping. */
export interface Pong {
  type: 'pong';
  ref?: string;
}

/** The reply to refresh. */
export interface Refreshed {
  type: 'refreshed';
  ref?: string;
}

/** An error the server reported; code is one of docs/protocol.md's error codes. */
export interface HubError {
  type: 'error';
  ref?: string;
  code: string;
  message: string;
  retryAfterMs?: number;
}

/** An error a request was rejected with. */
export interface HubRequestError extends Error {
  code?: string;
}

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface StateChange {
  state: ConnectionState;
  /** When the next reconnect attempt happens (ms since the epoch), while reconnecting. */
  retryAt: number | null;
}

export interface HubEvents {
  message: HubMessage;
  presence: PresenceChange;
  joined: Joined;
  gap: Gap;
  lagging: Lagging;
  reset: { room: string; epoch: string };
  removed: Removed;
  error: HubError;
  state: StateChange;
  disconnect: { code: number; reason: string };
}

export interface ReconnectOptions {
  /** First delay, ms (default 500). */
  initialDelay?: number;
  /** Longest delay, ms (default 30,000). */
  maxDelay?: number;
  /** Growth per attempt (default 2); each delay is drawn at random below the backoff (full jitter). */
  multiplier?: number;
}

export interface ConnectOptions {
  /** Display name (without authentication). */
  name?: string;
  /** Stable user id (without authentication; defaults to the name). */
  user?: string;
  /** A token when the server requires one (sent as access_token). */
  token?: string;
  reconnect?: ReconnectOptions;
  /** How long a command issued while not connected waits for the connection, ms (default 15,000). */
  requestTimeout?: number;
}

export declare class SwitchboardClient {
  constructor(url: string, options?: ConnectOptions);
  state: ConnectionState;
  retryAt: number | null;
  /** Set by the server's welcome. */
  connectionId?: string;
  user?: string;
  name?: string;
  /** Publishes waiting for an ack (sent or queued). */
  readonly pendingCount: number;
  /** Subscribes to an event; returns an unsubscribe function. */
  on<K extends keyof HubEvents>(event: K, handler: (value: HubEvents[K]) => void): () => boolean;
  /** Tries to reconnect now instead of waiting for the backoff. */
  reconnectNow(): void;
  /** Joins a room; resolves with the joined reply. Messages after since (or recent history) follow, then live ones. */
  join(room: string, options?: { since?: number }): Promise<Joined>;
  leave(room: string): Promise<Left>;
  /** Resolves with the ack once stored. Queued while offline and sent after reconnecting with the same id (stored once). */
  publish(room: string, text: string, options?: { id?: string }): Promise<Ack>;
  /** Messages before `before` (newest when omitted), ascending. */
  history(room: string, options?: { before?: number; limit?: number }): Promise<History>;
  /** Closes for good. */
  close(): void;
}

/** A new message id, what `publish` uses when given none: a version 7 UUID as 32 hex digits, so ids sort by the time they were made. */
export declare function newId(): string;

/** Connects to a hub endpoint (default: this page's server, /hub). */
export declare function connect(url?: string, options?: ConnectOptions): SwitchboardClient;

import type { AckFrame, ChannelName, ConnectedFrame, PublishFrame, ServerFrame, SubscribeFrame, SubscribeRecovery, UnsubscribeFrame } from '@herald/protocol';
import type { Transition } from './link.js';

/** Identifies one client instance (a tab, usually) among those sharing a connection. */
export type TabId = string;

/**
 * What the leader tab posts on the BroadcastChannel. Every message is stamped with the leader's id and
 * term ({@link LeaderMessage}), so that a message from a replaced leader is recognized and ignored; any of
 * them shows the leader is alive. `tab` addresses one tab; without it the message is for every tab.
 *
 * Keys never start with `_`: the minified bundle mangles such names, and two tabs may run different builds.
 */
export type LeaderBody = { tab?: TabId | undefined } & (
  | { t: 'beat' }
  /** The shared connection's state (never `connected`: each tab gets its own `connected` answer). `by`: the tab whose close() caused it. */
  | { t: 'state'; s: Transition; by?: TabId | undefined }
  /** The answer to a tab's `join`: the connection's `connected` frame with that tab's subscriptions. */
  | { t: 'connected'; f: ConnectedFrame }
  /** A frame from the server: a message (for every tab) or an answer (for one tab). */
  | { t: 'frame'; f: ServerFrame }
  /** A token `getToken()` returned in the leader tab: the next leader starts with it. */
  | { t: 'token'; token: string }
  /** How many tabs share the connection now (posted when it changes). */
  | { t: 'tabs'; n: number }
);

/** A leader message as posted: stamped with the leader's id and term. */
export type LeaderMessage = LeaderBody & { from: TabId; term: number };

/** What a tab posts for the leader. */
export type TabMessage = { from: TabId } &
  /** The tab wants the connection: its subscriptions and positions (also sent again after every reconnect). */
  (
    | { t: 'join'; subs: Record<ChannelName, SubscribeRecovery> }
    /** A subscribe, unsubscribe, inbox acknowledgement or publish of the tab. */
    | { t: 'send'; f: SubscribeFrame | UnsubscribeFrame | AckFrame | PublishFrame }
    /** The tab is going away (page hidden for good). */
    | { t: 'bye' }
    /** Sign-out: the tab's `close()` closes the connection of every tab. */
    | { t: 'close' }
    /** The tab became visible or came online: check the connection now. */
    | { t: 'wake' }
    /** The leader has been silent: is it still there? */
    | { t: 'probe' }
  );

/** Any message on the shared channel. */
export type SharedMessage = LeaderMessage | TabMessage;

/** Whether a message comes from a leader. */
export const isLeaderMessage = (m: SharedMessage): m is LeaderMessage => 'term' in m;

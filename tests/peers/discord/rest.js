// rest.js - the local Discord peer's REST routes under /api/v10:
//   PUT   /applications/{app}/guilds/{guild}/commands            -> 200 [commands with ids]
//   POST  /interactions/{id}/{token}/callback                    -> 204 (404 10062 after 3 s or for
//                                                                   an unknown id/token, 400 40060
//                                                                   when answered twice)
//   PATCH /webhooks/{app}/{token}/messages/@original             -> 200 message
// Every answer carries X-RateLimit-{Limit,Remaining,Reset-After,Bucket} per route; the test can
// inject 429s (retry_after in the body, Retry-After rounded up in the header) and 401s.
// Each call is recorded: {ev:"rest", method, path, status, body}.
'use strict';
const crypto = require('crypto');

class Interactions {
  constructor() { this.map = new Map(); this.next = 1n; }
  create(name) {
    const id = String(BigInt('500000000000000000') + this.next++);
    const it = { id, token: 'itok_' + crypto.randomBytes(24).toString('base64url'), name, t0: Date.now(),
                 cmdId: '40000000000000000' + (name.length % 10), answered: false };
    this.map.set(id, it);
    return it;
  }
  get(id) { return this.map.get(id); }
  byToken(token) { for (const it of this.map.values()) if (it.token === token) return it; return null; }
}

class Rest {
  constructor(opts) {
    this.token = opts.token;
    this.record = opts.record;
    this.interactions = opts.interactions;
    this.appId = opts.appId;
    this.inject = []; // queue of statuses to answer next (429, 401)
    this.buckets = new Map(); // route -> {remaining, resetAt}
  }

  bucketHeaders(route) {
    const now = Date.now();
    let b = this.buckets.get(route);
    if (!b || now >= b.resetAt) { b = { remaining: 5, resetAt: now + 5000 }; this.buckets.set(route, b); }
    b.remaining = Math.max(0, b.remaining - 1);
    return {
      'X-RateLimit-Limit': '5', 'X-RateLimit-Remaining': String(b.remaining),
      'X-RateLimit-Reset-After': ((b.resetAt - now) / 1000).toFixed(3),
      'X-RateLimit-Bucket': crypto.createHash('sha1').update(route).digest('hex').slice(0, 16),
    };
  }

  handle(req, res, body) {
    const url = new URL(req.url, 'http://x');
    const path = url.pathname.replace(/^\/api\/v10/, '');
    const method = req.method;
    let json = null;
    try { json = body.length ? JSON.parse(body) : null; } catch (e) { json = undefined; }
    // per-route buckets; an interaction's callback is its own bucket (its id is a major parameter)
    const route = path.startsWith('/interactions/') ? method + ' ' + path.replace(/\/itok_[^/]+/g, '/:token')
      : method + ' ' + path.replace(/\/\d{15,20}/g, '/:id').replace(/\/itok_[^/]+/g, '/:token');
    const reply = (status, obj, extra) => {
      const headers = Object.assign({ 'Content-Type': 'application/json' }, this.bucketHeaders(route), extra || {});
      this.record({ ev: 'rest', method, path: path.replace(/itok_[^/]+/, ':token'), status, body: json === undefined ? '<bad json>' : json });
      res.writeHead(status, headers);
      res.end(obj === null ? '' : JSON.stringify(obj));
    };
    if (req.headers.authorization !== 'Bot ' + this.token && !path.startsWith('/interactions/') && !path.startsWith('/webhooks/'))
      return reply(401, { message: '401: Unauthorized', code: 0 });
    if (this.inject.length) {
      const st = this.inject.shift();
      if (st === 429) return reply(429, { message: 'You are being rate limited.', retry_after: 0.25, global: false },
        { 'Retry-After': '1', 'X-RateLimit-Scope': 'user' });
      if (st === 401) return reply(401, { message: '401: Unauthorized', code: 0 });
    }
    if (json === undefined) return reply(400, { message: 'Invalid JSON', code: 50109 });
    let m;
    if (method === 'PUT' && (m = path.match(/^\/applications\/(\d+)\/guilds\/(\d+)\/commands$/))) {
      if (m[1] !== this.appId || !Array.isArray(json)) return reply(400, { message: 'Invalid Form Body', code: 50035 });
      for (const c of json) {
        if (typeof c.name !== 'string' || !/^[-_a-z0-9]{1,32}$/.test(c.name) || typeof c.description !== 'string')
          return reply(400, { message: 'Invalid Form Body', code: 50035 });
      }
      return reply(200, json.map((c, i) => Object.assign({ id: '30000000000000000' + i, application_id: m[1], guild_id: m[2], version: '1' }, c)));
    }
    if (method === 'POST' && (m = path.match(/^\/interactions\/(\d+)\/([^/]+)\/callback$/))) {
      const it = this.interactions.get(m[1]);
      const ms = it ? Date.now() - it.t0 : -1;
      if (!it || it.token !== m[2] || ms > 3000) {
        this.record({ ev: 'interaction_response', id: m[1], ok: false, ms });
        return reply(404, { message: 'Unknown interaction', code: 10062 });
      }
      if (it.answered) return reply(400, { message: 'Interaction has already been acknowledged.', code: 40060 });
      it.answered = true;
      const d = (json && json.data) || {};
      this.record({ ev: 'interaction_response', id: it.id, name: it.name, ok: true, ms, type: json && json.type,
                    content: d.content || null, flags: d.flags || 0 });
      return reply(204, null);
    }
    if (method === 'PATCH' && (m = path.match(/^\/webhooks\/(\d+)\/([^/]+)\/messages\/@original$/))) {
      const it = this.interactions.byToken(m[2]);
      if (!it || m[1] !== this.appId || !it.answered) return reply(404, { message: 'Unknown Webhook', code: 10015 });
      this.record({ ev: 'edit_original', id: it.id, name: it.name, content: json && json.content });
      return reply(200, { id: '61000000000000000', content: json && json.content, channel_id: '900000000000000010' });
    }
    return reply(404, { message: '404: Not Found', code: 0 });
  }
}

module.exports = { Rest, Interactions };

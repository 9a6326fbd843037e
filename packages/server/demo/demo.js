// The Herald demo page: the browser SDK, its connection state, and a publish form.
// Query parameters: ?channel=<name> (default "news", the channel the README and the development banner publish to), &ping=<ms> (heartbeat interval), &token=<jwt>.
(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('herald-config').textContent);
  var params = new URLSearchParams(location.search);
  var channel = params.get('channel') || 'news';
  var wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + config.wsPath;
  var $ = function (id) {
    return document.getElementById(id);
  };

  // State the tests (and curious developers) can read: window.heraldDemo.
  var demo = { messages: [], inbox: [], states: [], resets: [], errors: [], reconnects: 0 };
  window.heraldDemo = demo;

  var options = { url: wsUrl };
  if (params.get('token')) options.token = params.get('token');
  if (params.get('ping')) options.pingInterval = Number(params.get('ping'));
  if (params.get('maxDelay')) options.maxDelay = Number(params.get('maxDelay'));
  var client = Herald.createClient(options);
  demo.client = client;

  function log(text, cls) {
    var li = document.createElement('li');
    li.textContent = new Date().toLocaleTimeString() + '  ' + text;
    if (cls) li.className = cls;
    $('log').prepend(li);
  }

  function showPosition(sub) {
    var p = sub.position;
    $('position').textContent = p && p.epoch ? 'seq ' + p.seq + ', epoch ' + p.epoch : '-';
  }

  client.on('state', function (e) {
    demo.states.push(e);
    var el = $('state');
    el.textContent = e.to;
    el.className = 'state ' + e.to;
    if (e.code !== undefined) $('close').textContent = e.code + (e.reason ? ' ' + e.reason : '');
    if (e.to === 'connected') demo.connectedOnce = true;
    if (e.to === 'connecting' && demo.connectedOnce) demo.reconnects += 1;
    $('reconnects').textContent = String(demo.reconnects);
    var text = e.from + ' -> ' + e.to;
    if (e.code !== undefined) text += ' (code ' + e.code + (e.reason ? ': ' + e.reason : '') + ')';
    if (e.delay !== undefined) text += ', retry #' + e.attempt + ' in ' + Math.round(e.delay) + ' ms';
    log(text);
  });
  client.on('connected', function (e) {
    $('client').textContent = e.client;
  });
  client.on('error', function (err) {
    demo.errors.push(String(err && err.message));
    log('error: ' + (err && err.message), 'notice');
  });

  var sub = client.subscribe(channel, function (m) {
    demo.messages.push({ channel: m.channel, seq: m.seq, type: m.type, payload: m.payload });
    var li = document.createElement('li');
    var seq = document.createElement('span');
    seq.className = 'seq';
    seq.textContent = '#' + m.seq;
    li.appendChild(seq);
    li.appendChild(document.createTextNode(m.type + '  ' + JSON.stringify(m.payload)));
    li.dataset.seq = String(m.seq);
    $('messages').appendChild(li);
    showPosition(sub);
  });
  sub.on('subscribed', function () {
    showPosition(sub);
  });
  sub.on('recovered', function (e) {
    log('recovered missed messages after seq ' + e.since);
  });
  sub.on('reset', function (e) {
    demo.resets.push(e);
    showPosition(sub);
    var li = document.createElement('li');
    li.className = 'notice';
    li.textContent = 'History was lost (' + e.reason + '): messages may be missing; an app would reload its state now.';
    $('messages').appendChild(li);
    log('history lost on ' + channel + ' (' + e.reason + ')', 'notice');
  });
  // Inbox messages (kept for this user until acknowledged) arrive first at every connect; the SDK acknowledges
  // each once the handlers returned, and the server's `acked` marks it.
  client.on('message', function (m) {
    if (!m.inbox) return;
    demo.inbox.push({ id: m.inbox, type: m.type, payload: m.payload, acked: false });
    var li = document.createElement('li');
    li.dataset.inbox = m.inbox;
    li.appendChild(document.createTextNode(m.type + '  ' + JSON.stringify(m.payload)));
    var mark = document.createElement('span');
    mark.className = 'ack';
    mark.textContent = 'delivered';
    li.appendChild(mark);
    $('inbox').appendChild(li);
  });
  client.on('acked', function (e) {
    e.inbox.forEach(function (id) {
      demo.inbox.forEach(function (m) {
        if (m.id === id) m.acked = true;
      });
      var li = document.querySelector('#inbox li[data-inbox="' + id + '"]');
      if (!li) return;
      li.classList.add('acked');
      li.querySelector('.ack').textContent = '\u2713 acknowledged';
    });
  });
  $('channel').textContent = channel;
  client.connect();

  // Publish through the HTTP API (with the development key when the gateway runs in development mode).
  $('pub-channel').value = channel;
  $('pub-key').value = config.apiKey || '';
  $('publish').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var result = $('result');
    var payload;
    try {
      payload = JSON.parse($('pub-payload').value);
    } catch {
      result.className = 'error';
      result.textContent = 'payload is not valid JSON';
      return;
    }
    fetch('api/publish', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + $('pub-key').value },
      body: JSON.stringify(
        Object.assign({ channel: $('pub-channel').value, type: $('pub-type').value, payload: payload }, $('pub-inbox').checked ? { inbox: true } : {}),
      ),
    })
      .then(function (r) {
        return r.json().then(function (body) {
          return { status: r.status, body: body };
        });
      })
      .then(function (r) {
        result.className = r.status === 200 ? '' : 'error';
        result.textContent = r.status === 200 ? 'published: ' + JSON.stringify(r.body.results) : r.status + ' ' + JSON.stringify(r.body.error);
      })
      .catch(function (e) {
        result.className = 'error';
        result.textContent = 'request failed: ' + e.message;
      });
  });
})();

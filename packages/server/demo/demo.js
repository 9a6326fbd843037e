// The Herald demo page: the browser SDK, its connection state (shared by this browser's tabs), who is here
// (a presence channel), a small chat (client publish), and a publish form.
// Query parameters: ?channel=<name> (default "news", the channel the README and the development banner publish to),
// &ping=<ms> (heartbeat interval), &token=<jwt>, &name=<demo user name> (development mode: the page mints its token).
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
  var demo = { messages: [], inbox: [], chat: [], members: [], sharing: null, states: [], resets: [], errors: [], reconnects: 0 };
  window.heraldDemo = demo;

  var options = { url: wsUrl };
  // Who this browser is: a token given in the URL, or (development mode, on this machine) a demo user whose
  // name the browser keeps, so that its tabs are one user and share one connection.
  var name = null;
  if (params.get('token')) {
    options.token = params.get('token');
  } else if (config.demoTokens) {
    name = params.get('name');
    try {
      name = name || window.localStorage.getItem('herald-demo-name');
    } catch {
      /* storage blocked: a name for this page only */
    }
    if (!/^[A-Za-z0-9 _.-]{1,32}$/.test(name || '')) name = 'guest-' + Math.floor(1000 + Math.random() * 9000);
    try {
      window.localStorage.setItem('herald-demo-name', name);
    } catch {
      /* ignore */
    }
    options.getToken = function () {
      return fetch('demo-token?name=' + encodeURIComponent(name)).then(function (r) {
        if (!r.ok) throw new Error('demo token: HTTP ' + r.status);
        return r.json().then(function (b) {
          return b.token;
        });
      });
    };
  }
  demo.name = name;
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
    $('me').textContent = e.user === null ? 'anonymous' : e.user + (name ? ' (' + name + ')' : '');
  });
  // One WebSocket for all of this browser's tabs of this page (same user): the SDK elects one tab to hold it.
  function showSharing(s) {
    demo.sharing = s;
    $('sharing').textContent = '1 connection shared by ' + s.tabs + (s.tabs === 1 ? ' tab' : ' tabs') + (s.leader ? ' (this tab holds it)' : '');
  }
  showSharing(client.sharing);
  client.on('sharing', showSharing);
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

  // Who's here and the chat: a presence channel and a chat channel, with a token that grants them.
  var canChat = options.token !== undefined || options.getToken !== undefined;
  if (!canChat) {
    var hint = 'Needs a connection token: run the gateway in development mode and open this page on that machine, or pass ?token=.';
    $('members-hint').textContent = hint;
    $('chat-hint').textContent = hint;
    $('chat-text').disabled = true;
  } else {
    var here = client.subscribe(config.presence);
    var showMembers = function () {
      var list = $('members');
      list.textContent = '';
      demo.members = [];
      here.members.forEach(function (info, user) {
        var shown = info && typeof info.name === 'string' ? info.name : user;
        demo.members.push(shown);
        var li = document.createElement('li');
        li.textContent = shown + (name !== null && shown === name ? ' (you)' : '');
        list.appendChild(li);
      });
      $('member-count').textContent = here.memberCount + (here.memberCount === 1 ? ' user' : ' users');
    };
    here.on('subscribed', showMembers);
    here.on('join', showMembers);
    here.on('leave', showMembers);
    here.on('error', function (e) {
      $('members-hint').textContent = 'cannot join ' + config.presence + ': ' + (e.serverCode || e.code);
    });
    client.subscribe(config.chat, function (m) {
      var p = m.payload || {};
      demo.chat.push({ seq: m.seq, name: p.name, text: p.text });
      var li = document.createElement('li');
      var who = document.createElement('span');
      who.className = 'who';
      who.textContent = String(p.name || '?');
      li.appendChild(who);
      li.appendChild(document.createTextNode(String(p.text || '')));
      $('chat').appendChild(li);
      $('chat').scrollTop = $('chat').scrollHeight;
    });
    $('chat-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var input = $('chat-text');
      var text = input.value.trim();
      if (!text) return;
      var result = $('chat-result');
      client.publish(config.chat, 'chat.message', { name: name || client.user || 'anonymous', text: text }).then(
        function () {
          input.value = '';
          result.className = '';
          result.textContent = '';
        },
        function (e) {
          result.className = 'error';
          result.textContent = 'not sent: ' + (e.serverCode || e.code) + ' (' + e.message + ')';
        },
      );
    });
  }
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

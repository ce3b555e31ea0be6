/* Alerts in the browser: a short tone per kind (Web Audio) for events whose rule asks for
   sound while "play sounds" is on, and a browser notification when the user allowed them.
   Called by the clientside callbacks of app/callbacks/alerts.py with the new events. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  alerts: {
    announce: function (fresh, soundOn) {
      if (!fresh || !fresh.length) { return window.dash_clientside.no_update; }
      var tones = fresh.filter(function (e) { return e.sound; }).map(function (e) { return e.tone_hz; });
      if (soundOn && tones.length) {
        try {
          var Ctx = window.AudioContext || window.webkitAudioContext;
          var audio = window._tapescopeAudio || (window._tapescopeAudio = new Ctx());
          tones.slice(0, 3).forEach(function (hz, i) {
            var osc = audio.createOscillator();
            var gain = audio.createGain();
            var start = audio.currentTime + i * 0.25;
            osc.frequency.value = hz;
            gain.gain.setValueAtTime(0.15, start);
            gain.gain.exponentialRampToValueAtTime(0.001, start + 0.2);
            osc.connect(gain).connect(audio.destination);
            osc.start(start);
            osc.stop(start + 0.2);
          });
        } catch (err) { /* no audio device: the toast still shows */ }
      }
      if (window.Notification && Notification.permission === "granted") {
        fresh.slice(0, 3).forEach(function (e) {
          new Notification("Tapescope alert", { body: e.text, tag: "tapescope-" + e.id });
        });
      }
      return String(fresh[0].id);
    },
    askPermission: function (n) {
      if (!window.Notification) { return "Notifications not supported"; }
      Notification.requestPermission();
      return "Browser notifications: asked";
    }
  }
});

/* A click on an event row shows that moment: its symbol's page, and the event for the
   heatmap's range (app/callbacks/alerts.py). Listened for on the document, not through the
   rows' n_clicks: the list is redrawn when a new event arrives and Dash then remounts every
   row, so a press on a row replaced before its release ends as a click on the list itself
   (or nowhere) and the row's own click is lost. The row pressed is remembered (its id is
   the row's pattern id, as Dash renders it: JSON) and is the one a click in the list means. */
(function () {
  var pressed = null;
  function row(target) {
    var list = document.getElementById("alerts-events");
    if (!list || !target || !list.contains(target)) { return null; }
    var hit = target.closest(".alert-event");
    return hit && hit.id ? hit.id : "";
  }
  document.addEventListener("pointerdown", function (e) { pressed = row(e.target) || null; }, true);
  document.addEventListener("click", function (e) {
    var here = row(e.target);
    var id = here === null ? null : (pressed || here);
    pressed = null;
    if (!id) { return; }
    var event = JSON.parse(id);
    var set = window.dash_clientside.set_props;
    set("url", {pathname: "/" + event.symbol});
    set("alerts-jump", {data: {symbol: event.symbol, time: event.time, id: event.id}});
  }, true);
})();

/* Alert events pushed (docs/streams.md, /ws/alerts/): while the socket is open every event
   message asks the event list's callback to read the log at once (the "alerts-nudge" store,
   at most one read per 50 ms) and its poll slows to data-pushed-poll-ms, a safety net; when
   the socket drops the poll is back to data-poll-ms and the socket is tried again with a
   capped back-off. One Dash callback a second was the busiest request a pushed page still
   made, and each one's rendering held up the tape. The state is kept in
   window.tapescopeAlerts (pushed, nudges) for tests. */
(function () {
  var state = window.tapescopeAlerts = {pushed: false, nudges: 0};
  var delay = 1000, pending = false;

  function setProps(id, props) {
    if (window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props(id, props);
    }
  }

  function nudge() {
    if (pending) { return; }
    pending = true;
    setTimeout(function () {
      pending = false;
      state.nudges += 1;
      setProps("alerts-nudge", {data: state.nudges});
    }, 50);
  }

  function connect() {
    var config = document.getElementById("alerts-push-config");
    if (!config || !window.WebSocket) {  // alerts off on this page, or not rendered yet
      setTimeout(connect, 1000);
      return;
    }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/alerts/");
    socket.onopen = function () {
      delay = 1000;
      state.pushed = true;
      setProps("alerts-interval", {interval: Number(config.dataset.pushedPollMs)});
      nudge();  // anything logged while the socket was away
    };
    socket.onmessage = nudge;
    socket.onclose = function () {
      if (state.pushed) {
        state.pushed = false;
        setProps("alerts-interval", {interval: Number(config.dataset.pollMs)});
      }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", connect);
  } else {
    connect();
  }
})();

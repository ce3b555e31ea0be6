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
    jump: function () {
      /* A click on an event: its symbol's page, and the event for the heatmap's range. */
      var no = window.dash_clientside.no_update;
      var hit = (window.dash_clientside.callback_context.triggered || []).filter(function (t) {
        return t.value;
      })[0];
      if (!hit) { return [no, no]; }
      var id = JSON.parse(hit.prop_id.slice(0, hit.prop_id.lastIndexOf(".")));
      return ["/" + id.symbol, {symbol: id.symbol, time: id.time, id: id.id}];
    },
    askPermission: function (n) {
      if (!window.Notification) { return "Notifications not supported"; }
      Notification.requestPermission();
      return "Browser notifications: asked";
    }
  }
});

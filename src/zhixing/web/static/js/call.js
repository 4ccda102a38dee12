// The duty desks' video call (command/call_views.py). The media go browser to browser
// (RTCPeerConnection); the signalling goes through the platform only: this page posts its
// offer or answer and its ICE candidates to the JSON API, and reads the other side's, in order,
// from its SSE stream. No STUN/TURN server unless the platform is configured with one.
(function () {
  "use strict";
  var root = document.getElementById("call");
  if (!root) return;
  var cfg = JSON.parse(root.dataset.config);
  var L = cfg.labels;
  var TERMINAL = { ended: true, declined: true, missed: true, failed: true };
  function $(id) { return document.getElementById(id); }
  var stateEl = $("call-state"), durationEl = $("call-duration"), messageEl = $("call-message");
  var remoteVideo = $("remote-video"), localVideo = $("local-video"), stage = $("call-stage");

  var callId = cfg.call;
  var side = cfg.side;            // "caller", "callee", or null (the called desk before answering)
  var state = cfg.state;          // the platform's state of the call
  var answeredAt = cfg.answeredAt ? Date.parse(cfg.answeredAt) : null;
  var endedSeconds = cfg.duration;
  var live = false;               // this page holds the call's media
  var elsewhere = false;          // a colleague at this desk answered it
  var media = "new";              // the peer connection's state
  var pc = null, local = null, source = null, offer = null, wantAnswer = false;
  var remoteReady = false, inbox = [];      // the other side's candidates before its description
  var outbox = [], sending = false, canSend = false, flushTimer = null;
  var chain = Promise.resolve();  // signals are handled one after the other, in order

  function say(text) { messageEl.textContent = text || ""; }

  function api(method, path, body, keepalive) {
    return fetch("/api/v1/command/calls" + path, {
      method: method, credentials: "same-origin", keepalive: !!keepalive,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": cfg.csrf },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) {
          var e = new Error((data.error && data.error.message) || String(r.status));
          e.code = data.error && data.error.code;
          throw e;
        }
        return data;
      });
    });
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
    return (h ? h + ":" + pad(m) : String(m)) + ":" + pad(s % 60);
  }

  function show() {
    var shown = state;
    if (state === "connected" && live && media !== "connected") shown = "connecting";
    stateEl.dataset.state = shown;
    root.dataset.state = shown;
    stateEl.textContent = L[shown] || shown;
    var over = !!TERMINAL[state];
    var ringingHere = state === "ringing" && cfg.mayAnswer && side !== "caller" && !live;
    $("accept").hidden = !ringingHere;
    $("decline").hidden = !ringingHere;
    $("hangup").hidden = over || ringingHere || !(live || side);
    $("mute").hidden = over || !live;
    $("camera").hidden = over || !live;
    $("back").hidden = !over && !elsewhere;
    localVideo.hidden = over || !live;
    stage.classList.toggle("has-remote", !over && !!remoteVideo.srcObject);
    if (over && endedSeconds !== null && endedSeconds !== undefined) {
      durationEl.textContent = clock(endedSeconds);
    }
  }

  function tick() {
    if (state === "connected" && answeredAt) durationEl.textContent = clock((Date.now() - answeredAt) / 1000);
  }

  function stopMedia() {
    if (pc) { pc.onicecandidate = null; pc.onconnectionstatechange = null; pc.close(); pc = null; }
    if (local) local.getTracks().forEach(function (t) { t.stop(); });
    remoteVideo.srcObject = null;
    live = false;
  }

  function closeStream() { if (source) { source.close(); source = null; } }

  function over(newState, seconds) {
    state = newState;
    if (seconds !== undefined) endedSeconds = seconds;
    stopMedia();
    closeStream();
    show();
  }

  // --- media -----------------------------------------------------------------------------------

  function openMedia() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return Promise.reject(new Error(L.no_media));
    }
    return navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } })
      .then(function (stream) {
        local = stream;
        localVideo.srcObject = stream;
        return stream;
      });
  }

  function playRemote() {
    var p = remoteVideo.play();
    if (p && p.catch) {
      p.catch(function () {
        // No user gesture on this page yet: play muted, and offer the sound with a click.
        remoteVideo.muted = true;
        remoteVideo.play().catch(function () {});
        $("play").hidden = false;
      });
    }
  }

  function peer() {
    pc = new RTCPeerConnection({ iceServers: cfg.iceServers || [] });
    local.getTracks().forEach(function (t) { pc.addTrack(t, local); });
    pc.onicecandidate = function (e) { if (e.candidate) send(e.candidate.toJSON()); };
    pc.ontrack = function (e) {
      if (remoteVideo.srcObject !== e.streams[0]) {
        remoteVideo.srcObject = e.streams[0] || new MediaStream([e.track]);
        playRemote();
        show();
      }
    };
    pc.onconnectionstatechange = function () {
      if (!pc) return;
      media = pc.connectionState;
      if (media === "failed" && callId && !TERMINAL[state]) {
        api("POST", "/" + callId + "/end", { reason: "failed" })
          .then(function (c) { over(c.state, c.duration_seconds); })
          .catch(function () { over("failed"); });
      }
      show();
    };
    live = true;
    return pc;
  }

  // --- candidates out: batched, one request at a time, in order ---------------------------

  function send(candidate) {
    outbox.push(candidate);
    if (!flushTimer) flushTimer = setTimeout(flush, 40);
  }

  function flush() {
    flushTimer = null;
    if (!canSend || sending || !outbox.length || TERMINAL[state]) return;
    sending = true;
    var batch = outbox.splice(0, 50);
    api("POST", "/" + callId + "/candidates", { candidates: batch })
      .catch(function (e) { if (e.code !== "call_ended") say(L.refused + " " + e.message); })
      .then(function () { sending = false; if (outbox.length) flush(); });
  }

  // --- candidates and descriptions in --------------------------------------------------------

  function addRemoteCandidate(c) {
    return pc.addIceCandidate(c).catch(function () { /* a stale candidate: ignored */ });
  }

  function remoteDescription(desc) {
    return pc.setRemoteDescription(desc).then(function () {
      remoteReady = true;
      var queued = inbox; inbox = [];
      return Promise.all(queued.map(addRemoteCandidate));
    });
  }

  function handle(m) {
    var p = m.payload;
    if (m.kind === "offer") {
      offer = p;
      if (wantAnswer) return answerCall();
    } else if (m.kind === "answer") {
      if (pc && side === "caller") return remoteDescription(p);
    } else if (m.kind === "candidate") {
      if (pc && remoteReady) return addRemoteCandidate(p);
      inbox.push(p);
    } else if (m.kind === "state") {
      if (p.state === "connected") {
        answeredAt = Date.parse(p.at);
        if (side !== "caller" && p.answered_by !== cfg.me) {
          // A colleague at this desk took the call.
          state = "connected";
          cfg.mayAnswer = false;
          elsewhere = true;
          stopMedia(); closeStream();
          say(L.elsewhere);
          show();
          return;
        }
        state = "connected";
        show();
      } else if (TERMINAL[p.state]) {
        over(p.state, p.duration_seconds === null ? undefined : p.duration_seconds);
      }
    }
  }

  function listen() {
    if (source || !callId) return;
    source = new EventSource("/command/calls/" + callId + "/stream");
    source.addEventListener("signal", function (e) {
      var m = JSON.parse(e.data);
      chain = chain.then(function () { return handle(m); })
        .catch(function (err) { say(L.refused + " " + err.message); });
    });
  }

  // --- the caller ------------------------------------------------------------------------------

  function dial() {
    show();
    openMedia().then(function () {
      peer();
      return pc.createOffer();
    }).then(function (o) {
      return pc.setLocalDescription(o);
    }).then(function () {
      return api("POST", "", { to_court_code: cfg.to, sdp: pc.localDescription.sdp });
    }).then(function (call) {
      callId = call.id;
      side = "caller";
      state = call.state;
      history.replaceState(null, "", "/command/calls/" + callId);
      canSend = true;
      flush();
      listen();
      show();
    }).catch(function (e) {
      stopMedia();
      state = "failed";
      show();
      say((e.name === "NotAllowedError" || e.name === "NotFoundError" ? L.no_media : L.refused) +
          " " + e.message);
    });
  }

  // --- the called desk -------------------------------------------------------------------------

  function accept() {
    wantAnswer = true;
    $("accept").disabled = true;
    return openMedia().then(function () {
      peer();
      show();
      if (offer) return answerCall();
    }).catch(function (e) {
      wantAnswer = false;
      $("accept").disabled = false;
      stopMedia();
      show();
      say(L.no_media + " " + e.message);
    });
  }

  function answerCall() {
    if (!pc || !offer || side === "callee") return;
    var made = offer;
    offer = null;
    return remoteDescription(made).then(function () {
      return pc.createAnswer();
    }).then(function (a) {
      return pc.setLocalDescription(a);
    }).then(function () {
      return api("POST", "/" + callId + "/answer", { sdp: pc.localDescription.sdp });
    }).then(function (call) {
      side = "callee";
      state = call.state;
      answeredAt = Date.parse(call.answered_at);
      canSend = true;
      flush();
      show();
    }).catch(function (e) {
      stopMedia();
      show();
      say(L.refused + " " + e.message);
    });
  }

  function decline() {
    api("POST", "/" + callId + "/end", { reason: "decline" })
      .then(function (c) { over(c.state); })
      .catch(function (e) { say(L.refused + " " + e.message); });
  }

  // --- controls --------------------------------------------------------------------------------

  function hangUp() {
    if (!callId) { over("ended"); return; }
    api("POST", "/" + callId + "/end", { reason: "hangup" })
      .then(function (c) { over(c.state, c.duration_seconds); })
      .catch(function (e) { if (e.code === "call_ended") over(state); else say(L.refused + " " + e.message); });
  }

  function toggle(kind, button, offLabel, onLabel) {
    if (!local) return;
    var tracks = kind === "audio" ? local.getAudioTracks() : local.getVideoTracks();
    var off = button.getAttribute("aria-pressed") !== "true";
    tracks.forEach(function (t) { t.enabled = !off; });
    button.setAttribute("aria-pressed", off ? "true" : "false");
    button.textContent = off ? onLabel : offLabel;
  }

  $("accept").addEventListener("click", accept);
  $("decline").addEventListener("click", decline);
  $("hangup").addEventListener("click", hangUp);
  $("mute").addEventListener("click", function () { toggle("audio", $("mute"), L.mute, L.unmute); });
  $("camera").addEventListener("click", function () {
    toggle("video", $("camera"), L.camera_off, L.camera_on);
  });
  $("play").addEventListener("click", function () {
    remoteVideo.muted = false;
    remoteVideo.play().catch(function () {});
    $("play").hidden = true;
  });
  // Leaving the page ends the call it holds: nobody is left talking to a closed window.
  window.addEventListener("pagehide", function () {
    if (live && callId && !TERMINAL[state]) api("POST", "/" + callId + "/end", { reason: "hangup" }, true).catch(function () {});
  });

  setInterval(tick, 1000);
  if (!callId) {
    dial();
  } else if (state === "ringing" && cfg.mayAnswer && side !== "caller") {
    listen();  // the offer, the caller's candidates, and a call called off or rung out
    show();
    if (cfg.accept) accept();
  } else if (!TERMINAL[state] && side) {
    // A call this window did not start or answer: its media are elsewhere.
    say(L.resume);
    listen();
    show();
  } else {
    show();
  }
  tick();
})();

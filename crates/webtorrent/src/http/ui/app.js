// The web UI of the webtorrent HTTP server: talks to /api and plays files through /stream.
"use strict";

const $ = (sel) => document.querySelector(sel);
// A server started with a token is opened as /?token=…: every request of the page carries it.
const token = new URLSearchParams(location.search).get("token");
function withToken(path) {
  if (!token) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}
let selected = null;     // info-hash of the torrent shown in the details
let torrents = [];
let detailsTimer = null;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function bytes(n) {
  if (n == null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}
const rate = (n) => (n ? bytes(n) + "/s" : "–");
function eta(s) {
  if (s == null) return "–";
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function showError(message) {
  const box = $("#error");
  if (!message) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = message;
  box.hidden = false;
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(withToken(path), options);
  } catch (e) {
    throw new Error("the server cannot be reached: " + e.message);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!response.ok) {
    throw new Error((body && body.error) || text || response.statusText || ("HTTP " + response.status));
  }
  return body;
}

// ----- adding -----

async function addText(text) {
  text = text.trim();
  if (!text) { showError("Paste a magnet link or the URL of a .torrent file."); return; }
  const body = text.startsWith("magnet:") ? { magnet: text } : { url: text };
  const added = await api("/api/torrents", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return added;
}

async function addFile(file) {
  const data = await file.arrayBuffer();
  return api("/api/torrents", {
    method: "POST",
    headers: { "Content-Type": "application/x-bittorrent" },
    body: data,
  });
}

async function adding(work) {
  showError(null);
  $("#add-button").disabled = true;
  try {
    const added = await work();
    if (added) { select(added.info_hash); }
    $("#magnet").value = "";
    await refresh();
  } catch (e) {
    showError("Cannot add the torrent: " + e.message);
  } finally {
    $("#add-button").disabled = false;
  }
}

$("#add").addEventListener("submit", (e) => {
  e.preventDefault();
  adding(() => addText($("#magnet").value));
});
$("#torrent-file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) adding(() => addFile(file));
  e.target.value = "";
});

let dragDepth = 0;
document.addEventListener("dragenter", (e) => { e.preventDefault(); dragDepth++; $("#drop").hidden = false; });
document.addEventListener("dragleave", () => { if (--dragDepth <= 0) { dragDepth = 0; $("#drop").hidden = true; } });
document.addEventListener("dragover", (e) => e.preventDefault());
document.addEventListener("drop", (e) => {
  e.preventDefault();
  dragDepth = 0;
  $("#drop").hidden = true;
  const file = e.dataTransfer.files[0];
  if (file) { adding(() => addFile(file)); return; }
  const text = e.dataTransfer.getData("text/plain");
  if (text) adding(() => addText(text));
});

// ----- the list -----

async function act(infoHash, what) {
  showError(null);
  try {
    if (what === "remove" || what === "delete") {
      const query = what === "delete" ? "?delete_data=true" : "";
      await api("/api/torrents/" + infoHash + query, { method: "DELETE" });
      if (selected === infoHash) select(null);
    } else {
      await api("/api/torrents/" + infoHash + "/" + what, { method: "POST" });
    }
    await refresh();
  } catch (e) {
    showError("Cannot " + what + " the torrent: " + e.message);
  }
}

function renderList(list) {
  torrents = list;
  const body = $("#torrents tbody");
  body.replaceChildren();
  let down = 0, up = 0;
  for (const t of list) {
    down += t.download_rate; up += t.upload_rate;
    const pct = Math.floor(t.progress * 1000) / 10;
    // Set through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    const fill = el("div");
    fill.style.width = pct + "%";
    const bar = el("div", { class: "bar" + (t.progress >= 1 ? " done" : ""), dataset: { progress: String(t.progress) } }, fill);
    const state = el("span", { class: "state" + (t.state === "error" ? " error" : "") },
      t.state === "error" ? "error: " + t.error : t.state);
    const paused = t.state === "paused";
    const row = el("tr", { class: "torrent" + (t.info_hash === selected ? " selected" : ""), dataset: { infoHash: t.info_hash },
      onclick: () => select(t.info_hash) },
      el("td", {}, el("div", {}, t.name || t.info_hash), state),
      el("td", {}, bar, el("span", { class: "percent" }, pct + " %")),
      el("td", {}, rate(t.download_rate)),
      el("td", {}, rate(t.upload_rate)),
      el("td", {}, String(t.peers)),
      el("td", {}, t.progress >= 1 ? "done" : eta(t.eta)),
      el("td", {},
        el("button", { class: "plain", onclick: (e) => { e.stopPropagation(); act(t.info_hash, paused ? "resume" : "pause"); } }, paused ? "Resume" : "Pause"),
        " ",
        el("button", { class: "danger", onclick: (e) => { e.stopPropagation(); act(t.info_hash, "remove"); } }, "Remove"),
        " ",
        el("button", { class: "danger", title: "Remove and delete the downloaded files",
          onclick: (e) => { e.stopPropagation(); if (confirm("Delete the files of " + (t.name || t.info_hash) + "?")) act(t.info_hash, "delete"); } }, "Delete")));
    body.append(row);
  }
  $("#empty").hidden = list.length > 0;
  $("#totals").textContent = list.length ? "↓ " + rate(down) + "  ↑ " + rate(up) : "";
  const current = list.find((t) => t.info_hash === selected);
  if (current) {
    $("#details-name").textContent = current.name || current.info_hash;
    $("#details-magnet").textContent = current.magnet || "";
  }
}

async function refresh() {
  try {
    renderList(await api("/api/torrents"));
  } catch (e) {
    showError(e.message);
  }
}

// ----- details -----

function select(infoHash) {
  if (selected !== infoHash) stopPlayer();
  selected = infoHash;
  $("#details").hidden = !infoHash;
  for (const row of document.querySelectorAll("tr.torrent")) {
    row.classList.toggle("selected", row.dataset.infoHash === infoHash);
  }
  clearInterval(detailsTimer);
  if (infoHash) {
    const t = torrents.find((x) => x.info_hash === infoHash);
    $("#details-name").textContent = t ? (t.name || t.info_hash) : infoHash;
    refreshDetails();
    detailsTimer = setInterval(refreshDetails, 2000);
  }
}

async function setPriority(index, priority) {
  try {
    await api("/api/torrents/" + selected + "/files", {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ files: { [index]: Number(priority) } }),
    });
  } catch (e) {
    showError("Cannot change the file's priority: " + e.message);
  }
}

async function refreshDetails() {
  const infoHash = selected;
  if (!infoHash) return;
  let files, peers, trackers;
  try {
    [files, peers, trackers] = await Promise.all([
      api("/api/torrents/" + infoHash + "/files"),
      api("/api/torrents/" + infoHash + "/peers"),
      api("/api/torrents/" + infoHash + "/trackers"),
    ]);
  } catch (e) {
    if (selected === infoHash) showError(e.message);
    return;
  }
  if (selected !== infoHash) return;
  const fileRows = files.map((f) => {
    const playable = f.mime.startsWith("video/") || f.mime.startsWith("audio/");
    const priority = el("select", { onchange: (e) => setPriority(f.index, e.target.value) },
      ...[["0", "skip"], ["1", "low"], ["4", "normal"], ["7", "high"]].map(([v, label]) => {
        const o = el("option", { value: v }, label);
        if (Number(v) === f.priority || (v === "4" && ![0, 1, 7].includes(f.priority))) o.selected = true;
        return o;
      }));
    return el("tr", { dataset: { index: String(f.index) } },
      el("td", {}, f.path),
      el("td", {}, bytes(f.length)),
      el("td", {}, f.length ? Math.floor((f.downloaded / f.length) * 100) + " %" : "–"),
      el("td", {}, priority),
      el("td", {},
        playable ? el("button", { class: "plain play", onclick: () => play(f) }, "Play") : "",
        " ",
        el("a", { href: withToken(f.url + "?download=1"), download: f.name }, "Download")));
  });
  $("#files tbody").replaceChildren(...fileRows);
  const peerRows = peers.map((p) => el("tr", {},
    el("td", { class: "mono" }, p.addr || "–"),
    el("td", {}, p.client || p.peer_id.slice(0, 8)),
    el("td", { class: "transport" }, p.transport),
    el("td", {}, Math.floor(p.progress * 100) + " %"),
    el("td", {}, rate(p.download_rate)),
    el("td", {}, rate(p.upload_rate))));
  $("#peers tbody").replaceChildren(...peerRows);
  const trackerRows = trackers.map((t) => el("tr", {},
    el("td", { class: "mono" }, t.url),
    el("td", {}, String(t.tier)),
    el("td", {}, t.peers == null ? "–" : String(t.peers)),
    el("td", { class: t.error ? "state error" : "state" }, t.error || t.warning || (t.peers == null ? "waiting" : "working"))));
  $("#trackers tbody").replaceChildren(...trackerRows);
}

// ----- the player -----

function stopPlayer() {
  for (const media of [$("#video"), $("#audio")]) {
    media.pause();
    media.removeAttribute("src");
    media.load();
    media.hidden = true;
  }
  $("#player-box").hidden = true;
}

function play(file) {
  stopPlayer();
  const media = file.mime.startsWith("audio/") ? $("#audio") : $("#video");
  media.hidden = false;
  $("#player-box").hidden = false;
  $("#now-playing").textContent = file.path;
  media.src = withToken(file.url);
  media.play().catch((e) => showError("Cannot play " + file.name + ": " + e.message));
}

for (const media of [$("#video"), $("#audio")]) {
  media.addEventListener("error", () => {
    if (!media.getAttribute("src")) return;
    const codes = { 1: "aborted", 2: "network error", 3: "cannot decode", 4: "format not supported" };
    const err = media.error;
    showError("Playback failed: " + (err ? (codes[err.code] || "error " + err.code) + (err.message ? " (" + err.message + ")" : "") : "unknown error"));
  });
}

// ----- live updates -----

function live() {
  if (!window.EventSource) { setInterval(refresh, 1000); return; }
  const source = new EventSource(withToken("/api/events"));
  source.addEventListener("torrents", (e) => {
    try { renderList(JSON.parse(e.data)); } catch (_) { /* a torn message: the next one comes in a second */ }
  });
  source.onerror = () => {
    // EventSource reconnects by itself; meanwhile say so.
    if (source.readyState === EventSource.CLOSED) { showError("Live updates stopped; reload the page."); }
  };
}

refresh();
live();

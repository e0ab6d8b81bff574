// The outbox viewer: a list that follows the directory, and one message.
// Everything from the server is put into the page as text, never as HTML; the
// message's own HTML lives only in the sandboxed iframe.
"use strict";

const POLL_MS = 2000;
const RAW_SHOWN = 2 * 1024 * 1024;

const state = { page: 1, q: "", version: null, selected: null, pages: 1 };
const $ = (selector) => document.querySelector(selector);

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function mailbox(m) {
  // A name with a comma or quote is quoted, as it is written in the header.
  const name = m.name && /[,;"<>]/.test(m.name) ? `"${m.name.replace(/"/g, '\\"')}"` : m.name;
  if (name && m.address) return `${name} <${m.address}>`;
  return m.name || m.address || "";
}

function shortMailbox(m) {
  return m.name || m.address || "";
}

function people(list) {
  return list.map(shortMailbox).join(", ");
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// Local time, compact and sortable: 2026-07-01 09:30 (with seconds in the view).
function when(seconds, precise) {
  if (seconds === null || seconds === undefined) return "";
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}` + (precise ? `:${pad(d.getSeconds())}` : "");
  return `${day} ${time}`;
}

function messageUrl(id, rest) {
  return `api/messages/${encodeURIComponent(id)}${rest || ""}`;
}

async function json(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
  return response.json();
}

// ---- the list ----

async function loadList() {
  const params = new URLSearchParams({ page: state.page });
  if (state.q) params.set("q", state.q);
  let answer;
  try {
    answer = await json(`api/messages?${params}`);
  } catch (error) {
    $("#status").textContent = `cannot load the list: ${error.message}`;
    return;
  }
  const page = answer.page;
  state.version = page.version;
  state.page = page.page;
  state.pages = page.pages;
  $("#dir").textContent = answer.dir;
  renderList(page);
}

function renderList(page) {
  const rows = page.items.map((item) => {
    const recipients = people(item.to) + (item.cc.length ? ` · cc ${people(item.cc)}` : "");
    const subject = item.unreadable
      ? el("span", { title: item.unreadable },
        el("span", { class: "badge" }, "unreadable"), " ", item.subject || item.unreadable)
      : (item.subject || "(no subject)");
    const row = el("tr", { class: "message" + (item.unreadable ? " unreadable" : ""), "data-id": item.id, tabIndex: 0 },
      el("td", { class: "date" }, when(item.date)),
      el("td", { class: "from", title: item.from.map(mailbox).join(", ") }, people(item.from)),
      el("td", { class: "to", title: item.to.concat(item.cc).map(mailbox).join(", ") }, recipients),
      el("td", { class: "subject" }, subject),
      el("td", { class: "size" }, size(item.size)),
      el("td", { class: "files" }, item.attachments ? String(item.attachments) : ""));
    if (item.id === state.selected) row.classList.add("selected");
    row.addEventListener("click", () => select(item.id));
    row.addEventListener("keydown", (event) => { if (event.key === "Enter") select(item.id); });
    return row;
  });
  $("#list tbody").replaceChildren(...rows);

  const empty = $("#empty");
  empty.hidden = page.items.length > 0;
  if (page.missing) empty.textContent = "The directory does not exist yet: mail sent with `cmsi-mail send` will appear here.";
  else if (state.q) empty.textContent = `No message matches “${state.q}”.`;
  else empty.textContent = "No mail yet: mail sent with `cmsi-mail send` will appear here.";

  const first = page.total ? (page.page - 1) * page.page_size + 1 : 0;
  const last = Math.min(page.page * page.page_size, page.total);
  $("#range").textContent = `${first}–${last} of ${page.total.toLocaleString()}`;
  $("#newer").disabled = page.page <= 1;
  $("#older").disabled = page.page >= page.pages;
  $("#status").textContent = page.in_progress
    ? `${page.in_progress} file(s) being written, not shown`
    : "";
}

async function poll() {
  try {
    const { version } = await json("api/version");
    if (version !== state.version) await loadList();
  } catch (error) {
    $("#status").textContent = `the viewer is not answering (${error.message})`;
  }
}

// ---- one message ----

async function select(id) {
  state.selected = id;
  if (decodeURIComponent(location.hash.slice(1)) !== id) {
    history.replaceState(null, "", `#${encodeURIComponent(id)}`);
  }
  for (const row of document.querySelectorAll("#list tr.message")) {
    row.classList.toggle("selected", row.dataset.id === id);
  }
  let view;
  try {
    view = await json(messageUrl(id));
  } catch (error) {
    $("#message-pane").hidden = false;
    $("#m-subject").textContent = "";
    $("#m-notices").replaceChildren(el("p", { class: "notice error" }, `cannot open this message: ${error.message}`));
    return;
  }
  if (state.selected !== id) return;
  renderMessage(view);
}

function renderMessage(view) {
  $("#message-pane").hidden = false;
  $("#m-subject").textContent = view.unreadable && !view.subject ? "(unreadable file)" : (view.subject || "(no subject)");

  const meta = [];
  const row = (name, value, cls) => {
    if (!value) return;
    meta.push(el("dt", {}, name), el("dd", { class: cls }, value));
  };
  row("From", view.from.map(mailbox).join(", "), "from");
  row("To", view.to.map(mailbox).join(", "), "to");
  row("Cc", view.cc.map(mailbox).join(", "), "cc");
  row("Date", when(view.date, true), "date");
  if (view.envelope) {
    row("Envelope", `${view.envelope.sender || "?"} → ${view.envelope.recipients.join(", ")}`, "envelope");
  } else {
    row("Envelope", view.envelope_problem || "no envelope file beside this message", "envelope missing");
  }
  row("File", `${view.id}.eml · ${size(view.size)}`, "file");
  $("#m-meta").replaceChildren(...meta);

  const notices = [];
  if (view.unreadable) {
    notices.push(el("p", { class: "notice error", id: "notice-unreadable" },
      `This file is not a complete message: ${view.unreadable}. What could be read is shown; the raw tab has the file.`));
  }
  notices.push(el("p", { class: "notice blocked", id: "notice-blocked", hidden: true }));
  $("#m-notices").replaceChildren(...notices);

  const parts = view.parts.map((part) => {
    const name = part.name || `part ${part.index}`;
    const link = el("a", {
      class: "attachment", href: messageUrl(view.id, `/parts/${part.index}?download`),
      download: name, "data-name": name, "data-index": part.index,
    }, name);
    return el("li", { class: part.inline ? "inline" : "" },
      link, el("span", { class: "type" }, ` ${part.content_type} · ${size(part.size)}${part.inline ? " · inline" : ""}`));
  });
  $("#m-parts").replaceChildren(...parts);
  $("#m-parts").hidden = parts.length === 0;

  if (view.text !== null) {
    $("#tab-text").textContent = view.text;
  } else if (view.html_as_text !== null) {
    $("#tab-text").replaceChildren(
      el("span", { class: "note" }, "This message has no text part; its HTML as text:\n\n"), view.html_as_text);
  } else {
    $("#tab-text").textContent = "This message has no text part.";
  }
  const headerRows = view.headers.map((h) => el("tr", {},
    el("th", {}, h.name),
    el("td", {}, h.value, h.decoded ? el("div", { class: "decoded" }, h.decoded) : null)));
  $("#tab-headers tbody").replaceChildren(...headerRows);
  $("#tab-raw pre").textContent = "";
  $("#tab-raw").dataset.loaded = "";

  const frame = $("#body-frame");
  const htmlButton = document.querySelector('#tabs [data-tab="html"]');
  htmlButton.disabled = !view.html;
  if (view.html) {
    frame.onload = () => watchBlocked(view.id);
    frame.src = messageUrl(view.id, "/html");
  } else {
    frame.onload = null;
    frame.removeAttribute("src");
  }
  showTab(view.html ? "html" : view.unreadable ? "raw" : "text");
}

// The browser reports what the message's policy blocked to the server; ask a
// few times, as reports are sent while the frame loads.
function watchBlocked(id) {
  for (const delay of [0, 300, 1000, 2500, 5000]) {
    setTimeout(async () => {
      if (state.selected !== id) return;
      let answer;
      try {
        answer = await json(messageUrl(id, "/blocked"));
      } catch {
        return;
      }
      if (state.selected !== id || !answer.blocked.length) return;
      const notice = $("#notice-blocked");
      notice.hidden = false;
      notice.replaceChildren(
        answer.blocked.length === 1
          ? "Remote content blocked: 1 load from outside this message was stopped (a tracking pixel, a remote image or style). "
          : `Remote content blocked: ${answer.blocked.length} loads from outside this message were stopped (tracking pixels, remote images or styles). `,
        el("span", { class: "urls" }, answer.blocked.join("  ")));
    }, delay);
  }
}

async function showTab(name) {
  for (const button of document.querySelectorAll("#tabs button")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === name));
  }
  for (const tab of document.querySelectorAll(".tab")) {
    tab.hidden = tab.id !== `tab-${name}`;
  }
  if (name === "raw" && state.selected && $("#tab-raw").dataset.loaded !== state.selected) {
    const id = state.selected;
    $("#tab-raw").dataset.loaded = id;
    const response = await fetch(messageUrl(id, "/raw"), { cache: "no-store" });
    const text = await response.text();
    if (state.selected !== id) return;
    const download = el("a", { href: messageUrl(id, "/raw?download"), download: `${id}.eml` }, "download the .eml");
    const note = text.length > RAW_SHOWN
      ? [`The first ${size(RAW_SHOWN)} are shown: `, download]
      : [download];
    $("#raw-note").replaceChildren(...note);
    $("#tab-raw pre").textContent = text.slice(0, RAW_SHOWN);
  }
}

// ---- wiring ----

function start() {
  let typing;
  $("#search").addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      state.q = event.target.value.trim();
      state.page = 1;
      loadList();
    }, 250);
  });
  $("#newer").addEventListener("click", () => { state.page -= 1; loadList(); });
  $("#older").addEventListener("click", () => { state.page += 1; loadList(); });
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  loadList().then(() => {
    const id = decodeURIComponent(location.hash.slice(1));
    if (id) select(id);
  });
  setInterval(poll, POLL_MS);
}

start();

// The sandbox chat page: acts as a Telegram user through /sandbox/api and long-polls
// /sandbox/api/view for what to show (it answers as soon as anything changes).
"use strict";

const $ = (selector) => document.querySelector(selector);
const testid = (id) => document.querySelector(`[data-testid="${id}"]`);

const ui = {
  userId: null,        // until chosen: the sandbox's default user, from the first view
  firstName: "",
  chat: "private",
  channel: "",
  version: -1,
  poll: null,          // AbortController of the running long poll
  view: null,          // last view received
  typingTimer: null,
  inlineTimer: null,
  shownAnswerSeq: 0,   // last callback answer already shown as a toast
  answersChat: null,   // the chat whose answers shownAnswerSeq tracks
  replyTo: null,       // the message the next one replies to (as Telegram's reply_to_message)
};

function loadSettings() {
  try {
    const saved = JSON.parse(localStorage.getItem("sandbox-settings") || "{}");
    Object.assign(ui, {userId: saved.userId || ui.userId, firstName: saved.firstName || ui.firstName,
                       chat: saved.chat || ui.chat, channel: saved.channel || ui.channel});
  } catch (error) { /* private mode or corrupt value: keep defaults */ }
}

function saveSettings() {
  try {
    localStorage.setItem("sandbox-settings", JSON.stringify(
      {userId: ui.userId, firstName: ui.firstName, chat: ui.chat, channel: ui.channel}));
  } catch (error) { /* not persisted */ }
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const response = await fetch("/sandbox/api/" + path, options);
  const data = await response.json();
  if (!data.ok) throw new Error(data.error || "HTTP " + response.status);
  return data.result;
}

function asUser(extra) {
  return {user_id: ui.userId, first_name: ui.firstName, ...extra};
}

function showError(error) {
  const node = testid("error");
  node.textContent = error ? String(error.message || error) : "";
  node.hidden = !error;
}

async function act(path, body) {
  try {
    showError(null);
    return await api(path, body);
  } catch (error) {
    showError(error);
    return null;
  }
}

// --- long poll ---------------------------------------------------------------------------------

async function pollLoop() {
  for (;;) {
    const controller = new AbortController();
    ui.poll = controller;
    const params = new URLSearchParams({chat: ui.chat, channel: ui.channel, since: ui.version, wait: 20});
    if (ui.userId !== null) params.set("user_id", ui.userId);
    try {
      const response = await fetch("/sandbox/api/view?" + params, {signal: controller.signal});
      const data = await response.json();
      testid("connection-status").classList.add("online");
      if (data.ok && !data.result.unchanged) render(data.result);
      if (data.ok) ui.version = data.result.version;
    } catch (error) {
      if (error.name !== "AbortError") {
        testid("connection-status").classList.remove("online");
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }
}

function refresh() {
  ui.version = -1;
  if (ui.poll) ui.poll.abort();
}

// --- rendering ---------------------------------------------------------------------------------

function render(view) {
  ui.view = view;
  if (ui.userId === null) {
    ui.userId = view.default_user.id;
    ui.firstName = view.default_user.first_name;
    testid("user-id").value = ui.userId;
    testid("user-name").value = ui.firstName;
  }
  const list = testid("message-list");
  const chatKey = ui.chat + ":" + ui.userId;
  // Follow the conversation unless the user scrolled up to read older messages.
  const stick = list.dataset.chat !== chatKey || list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  testid("bot-name").textContent = `${view.bot.first_name} (@${view.bot.username})`;
  renderSelectors(view);
  renderMessages(view);
  renderTyping(view.typing);
  renderToast(view.callback_answers);
  renderReplyKeyboard(view.reply_keyboard);
  renderCommands(view.commands);
  renderInline(view.inline);
  renderChannel(view);
  renderChatsNote(view.chats_file);
  list.dataset.chat = chatKey;
  if (stick) list.scrollTop = list.scrollHeight;
}

function renderSelectors(view) {
  const chatSelect = testid("chat-select");
  const groupValue = String(view.group.id);
  if (![...chatSelect.options].some((o) => o.value === groupValue)) {
    chatSelect.append(el("option", {value: groupValue, text: view.group.title}));
  }
  chatSelect.value = ui.chat;
  const known = $("#known-users");
  known.replaceChildren(...view.users.map((u) => el("option", {value: String(u.id), text: u.first_name})));
  const chatTitle = ui.chat === "private" ? `${view.bot.first_name} · private chat as ${ui.firstName}`
                                          : `${view.group.title} · as ${ui.firstName}`;
  testid("chat-title").textContent = chatTitle;
}

function renderMessages(view) {
  const list = testid("message-list");
  const inGroup = ui.chat !== "private";
  list.replaceChildren(...view.messages.map((message) => messageElement(message, {
    mine: Boolean(message.from && message.from.id === ui.userId),
    showSender: inGroup,
    onButton: pressButton,
    onReply: startReply,
  })));
  if (!view.messages.length) list.append(el("p", {class: "empty", text: "No messages yet. Try /start."}));
}

function renderChatsNote(chatsFile) {
  testid("chats-note").textContent = chatsFile
    ? `Chats are kept in ${chatsFile} across restarts.`
    : "Chats are kept in memory only: a restart of the sandbox empties them.";
}

function renderTyping(typing) {
  const node = testid("typing-indicator");
  clearTimeout(ui.typingTimer);
  const words = {typing: "is typing…", upload_photo: "is sending a photo…"};
  node.hidden = !typing;
  if (!typing) return;
  node.textContent = `${ui.view.bot.first_name} ${words[typing.action] || typing.action.replace(/_/g, " ") + "…"}`;
  ui.typingTimer = setTimeout(() => { node.hidden = true; }, typing.seconds_left * 1000);
}

function renderToast(answers) {
  const chatKey = ui.chat + ":" + ui.userId;
  // Answers given before this chat was opened are history, not news: do not replay them.
  const fresh = ui.answersChat === chatKey ? answers.filter((a) => a.seq > ui.shownAnswerSeq && a.text) : [];
  ui.answersChat = chatKey;
  for (const answer of answers) ui.shownAnswerSeq = Math.max(ui.shownAnswerSeq, answer.seq);
  const latest = fresh[fresh.length - 1];
  if (!latest) return;
  if (latest.show_alert) {
    const alert = testid("callback-alert");
    alert.querySelector(".alert-text").textContent = latest.text;
    alert.hidden = false;
    return;
  }
  const toast = testid("callback-toast");
  toast.textContent = latest.text;
  toast.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { toast.hidden = true; }, 3000);
}

function renderReplyKeyboard(markup) {
  const node = testid("reply-keyboard");
  const rows = markup && markup.keyboard;
  node.hidden = !rows;
  node.replaceChildren(...(rows || []).map((row) => el("div", {class: "keyboard-row"},
    ...row.map((button) => {
      const label = typeof button === "string" ? button : button.text;
      const key = el("button", {type: "button", class: "kb-button", "data-testid": "reply-button", text: label});
      key.addEventListener("click", () => sendText(label));
      return key;
    }))));
}

function renderCommands(commands) {
  const menu = testid("commands-menu");
  menu.replaceChildren(...commands.map((c) => {
    const item = el("button", {type: "button", class: "command", "data-testid": "command-item"},
      el("b", {text: "/" + c.command}), document.createTextNode(" " + c.description));
    item.addEventListener("click", () => {
      const input = testid("composer-input");
      input.value = "/" + c.command + " ";
      menu.hidden = true;
      input.focus();
    });
    return item;
  }));
  testid("commands-button").disabled = !commands.length;
}

function renderInline(inline) {
  const box = testid("inline-results");
  const typed = testid("inline-query-input").value;
  if (!typed || !inline || inline.query !== stripBotName(typed)) {
    box.replaceChildren();
    return;
  }
  if (!inline.answered) {
    box.replaceChildren(el("p", {class: "hint", text: "waiting for the bot…"}));
    return;
  }
  const results = inline.answer.results;
  if (!results.length) box.replaceChildren(el("p", {class: "hint", text: "no results"}));
  else box.replaceChildren(...results.map((result) => inlineResultElement(inline, result)));
}

function inlineResultElement(inline, result) {
  // The server parsed each result's message text (parse_mode) into a preview with entities.
  const preview = (inline.previews || {})[String(result.id)];
  const summary = result.description ? document.createTextNode(result.description)
    : preview ? richText(preview.text, preview.entities) : document.createTextNode("");
  const node = el("button", {type: "button", class: "inline-result", "data-testid": "inline-result",
                             "data-result-id": String(result.id)},
    el("b", {text: result.title || result.type}), el("span", {}, summary));
  node.addEventListener("click", async () => {
    const sent = await act("inline_result", asUser({inline_query_id: inline.id, result_id: String(result.id),
                                                   chat_id: ui.chat}));
    if (sent) {
      testid("inline-query-input").value = "";
      testid("inline-results").replaceChildren();
    }
  });
  return node;
}

function renderChannel(view) {
  const select = testid("channel-select");
  select.replaceChildren(...view.channels.map((c) => el("option", {
    value: String(c.id), text: (c.username ? "@" + c.username : c.title) + (c.bot_is_admin ? "" : " (bot not admin)")})));
  if (view.channel_id !== null) select.value = String(view.channel_id);
  const channel = view.channels.find((c) => c.id === view.channel_id);
  const note = testid("channel-note");
  note.hidden = !channel || channel.bot_is_admin;
  note.textContent = "The bot is not an admin here: its posts are refused with 403.";
  const feed = testid("channel-feed");
  const nearBottom = feed.scrollHeight - feed.scrollTop - feed.clientHeight < 80;
  feed.replaceChildren(...view.posts.map((post) => {
    const node = messageElement(post, {mine: false, showSender: false, onButton: null});
    node.setAttribute("data-testid", "channel-post");
    return node;
  }));
  if (!view.posts.length) feed.append(el("p", {class: "empty", text: "No posts yet."}));
  if (nearBottom) feed.scrollTop = feed.scrollHeight;
}

// --- actions -----------------------------------------------------------------------------------

async function sendText(text) {
  if (!text.trim()) {
    // Telegram does not send a message of only spaces either.
    showError(new Error("Type some text first: a message of only spaces is not sent."));
    return false;
  }
  const reply = ui.replyTo ? {reply_to_message_id: ui.replyTo.message_id} : {};
  const sent = await act("send", asUser({text, chat_id: ui.chat, ...reply}));
  if (sent) cancelReply();
  return Boolean(sent);
}

function startReply(message) {
  ui.replyTo = message;
  const bar = testid("reply-preview");
  bar.querySelector(".reply-to-name").textContent = "Reply to " + senderName(message);
  bar.querySelector(".reply-to-text").textContent = messagePreview(message).slice(0, 120);
  bar.hidden = false;
  testid("composer-input").focus();
}

function cancelReply() {
  ui.replyTo = null;
  testid("reply-preview").hidden = true;
}

async function pressButton(message, button, node) {
  if (button.callback_data !== undefined) {
    node.classList.add("pressed");
    await act("press", asUser({chat_id: message.chat.id, message_id: message.message_id,
                               data: button.callback_data}));
    setTimeout(() => node.classList.remove("pressed"), 400);
  } else if (button.switch_inline_query_current_chat !== undefined || button.switch_inline_query !== undefined) {
    const input = testid("inline-query-input");
    input.value = button.switch_inline_query_current_chat ?? button.switch_inline_query;
    input.focus();
    sendInlineQuery();
  } else {
    showError(new Error("this button type does nothing in the sandbox"));
  }
}

function stripBotName(text) {
  return text.replace(/^@\w+\s?/, "");
}

async function sendInlineQuery() {
  const typed = testid("inline-query-input").value;
  if (!typed) { testid("inline-results").replaceChildren(); return; }
  await act("inline_query", asUser({query: stripBotName(typed), chat_id: ui.chat}));
}

function applyIdentity() {
  const id = parseInt(testid("user-id").value, 10);
  if (!Number.isInteger(id) || id < 1) return;
  cancelReply();
  ui.userId = id;
  ui.firstName = testid("user-name").value.trim() || `User ${id}`;
  saveSettings();
  refresh();
}

function setup() {
  loadSettings();
  testid("user-id").value = ui.userId ?? "";
  testid("user-name").value = ui.firstName;
  testid("user-id").addEventListener("change", () => {
    const known = ui.view && ui.view.users.find((u) => u.id === parseInt(testid("user-id").value, 10));
    if (known) testid("user-name").value = known.first_name;
    applyIdentity();
  });
  testid("user-name").addEventListener("change", applyIdentity);
  testid("reply-cancel").addEventListener("click", cancelReply);
  testid("user-form").addEventListener("submit", (event) => { event.preventDefault(); applyIdentity(); });
  testid("chat-select").addEventListener("change", (event) => {
    ui.chat = event.target.value;
    cancelReply();
    saveSettings();
    refresh();
  });
  testid("channel-select").addEventListener("change", (event) => {
    ui.channel = event.target.value;
    saveSettings();
    refresh();
  });

  const input = testid("composer-input");
  testid("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value;
    input.value = "";
    if (!await sendText(text)) input.value = text;  // not sent: keep it to fix
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && ui.replyTo) cancelReply();
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      testid("composer").requestSubmit();
    }
  });
  testid("commands-button").addEventListener("click", () => {
    const menu = testid("commands-menu");
    menu.hidden = !menu.hidden;
  });
  testid("inline-query-input").addEventListener("input", () => {
    clearTimeout(ui.inlineTimer);
    ui.inlineTimer = setTimeout(sendInlineQuery, 300);
  });
  testid("callback-alert").querySelector(".alert-ok").addEventListener("click", () => {
    testid("callback-alert").hidden = true;
  });
  pollLoop();
}

document.addEventListener("DOMContentLoaded", setup);

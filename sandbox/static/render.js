// Builds DOM for Telegram messages. Text from the bot is never parsed as HTML: the server has
// already turned parse_mode markup into plain text + entities, and we wrap entity ranges in a
// fixed set of elements, assigning text only through text nodes.
"use strict";

const SAFE_LINK = /^(https?:|tg:|mailto:)/i;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key === "title" || key === "type" || key === "role") {
      node.setAttribute(key, value);
    } else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function entityElement(entity, text) {
  const simple = {bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code",
                  pre: "pre", blockquote: "blockquote", expandable_blockquote: "blockquote"};
  if (simple[entity.type]) return el(simple[entity.type]);
  if (entity.type === "spoiler") {
    const span = el("span", {class: "spoiler", title: "spoiler: click to reveal"});
    span.addEventListener("click", () => span.classList.add("revealed"));
    return span;
  }
  if (entity.type === "text_link" || entity.type === "url") {
    let href = entity.type === "url" ? text : entity.url;
    if (entity.type === "url" && !/^[a-z]+:/i.test(href)) href = "http://" + href;
    if (!SAFE_LINK.test(href || "")) return el("span", {class: "link-unsafe", title: href});
    return el("a", {href, target: "_blank", rel: "noopener noreferrer"});
  }
  return el("span", {class: "entity-" + entity.type});
}

// Entities use UTF-16 offsets, which is what JavaScript string indices are.
function richText(text, entities) {
  const root = document.createDocumentFragment();
  const sorted = (entities || []).slice().sort((a, b) => a.offset - b.offset || b.length - a.length);

  function build(parent, start, end, list) {
    let pos = start;
    let i = 0;
    while (i < list.length) {
      const entity = list[i];
      if (entity.offset < pos) { i++; continue; }  // overlaps a sibling: Telegram forbids it
      if (entity.offset > pos) parent.append(document.createTextNode(text.slice(pos, entity.offset)));
      const entityEnd = Math.min(entity.offset + entity.length, end);
      const inner = [];
      let j = i + 1;
      while (j < list.length && list[j].offset < entityEnd) inner.push(list[j++]);
      const node = entityElement(entity, text.slice(entity.offset, entityEnd));
      build(node, entity.offset, entityEnd, inner);
      parent.append(node);
      pos = entityEnd;
      i = j;
    }
    if (pos < end) parent.append(document.createTextNode(text.slice(pos, end)));
  }

  build(root, 0, text.length, sorted);
  return root;
}

function formatTime(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
}

function messagePreview(message) {
  return message.text || message.caption || (message.photo ? "📷 Photo" : "");
}

function senderName(message) {
  const from = message.from || message.sender_chat || {};
  return [from.first_name || from.title, from.last_name].filter(Boolean).join(" ") || "?";
}

// One message bubble. `onButton(message, button)` handles inline keyboard clicks (or null);
// `onReply(message)`, when given, adds a reply action to the bubble.
function messageElement(message, {mine, showSender, onButton, onReply}) {
  const fromBot = Boolean(message.from && message.from.is_bot) || Boolean(message.sender_chat);
  const bubble = el("div", {
    class: "msg " + (mine ? "mine" : fromBot ? "bot" : "other"),
    "data-testid": "message",
    "data-message-id": String(message.message_id),
    "data-from": fromBot ? "bot" : "user",
  });
  if (showSender && !mine) bubble.append(el("div", {class: "sender", text: senderName(message)}));
  if (message.reply_to_message) {
    const quoted = message.reply_to_message;
    bubble.append(el("div", {class: "reply-quote", "data-testid": "reply-quote"},
      el("b", {text: senderName(quoted)}), el("br"),
      document.createTextNode((messagePreview(quoted) || "📷 Photo").slice(0, 120))));
  }
  if (message.via_bot) {
    bubble.append(el("div", {class: "via", text: "via @" + message.via_bot.username}));
  }
  if (message.photo && message.photo.length) {
    const largest = message.photo[message.photo.length - 1];
    bubble.append(el("img", {class: "photo", "data-testid": "message-photo", alt: "photo",
                             src: "/sandbox/files/" + encodeURIComponent(largest.file_id)}));
  }
  const body = message.text !== undefined
    ? richText(message.text, message.entities)
    : richText(message.caption || "", message.caption_entities);
  bubble.append(el("div", {class: "text", "data-testid": "message-text"}, body));
  let reply = null;
  if (onReply) {
    reply = el("button", {type: "button", class: "reply-action", "data-testid": "reply-action",
                          title: "reply to this message", text: "↩ Reply"});
    reply.addEventListener("click", () => onReply(message));
  }
  bubble.append(el("div", {class: "meta"}, reply,
    message.edit_date ? el("span", {class: "edited", "data-testid": "message-edited", text: "edited"}) : null,
    el("time", {text: formatTime(message.date)})));
  const rows = (message.reply_markup || {}).inline_keyboard;
  if (rows && rows.length) bubble.append(keyboardElement(message, rows, onButton));
  return bubble;
}

function keyboardElement(message, rows, onButton) {
  const keyboard = el("div", {class: "keyboard", "data-testid": "inline-keyboard"});
  for (const row of rows) {
    const line = el("div", {class: "keyboard-row"});
    for (const button of row) {
      if (button.url && SAFE_LINK.test(button.url)) {
        line.append(el("a", {class: "kb-button url", "data-testid": "inline-button", text: button.text,
                             href: button.url, target: "_blank", rel: "noopener noreferrer"}));
        continue;
      }
      const node = el("button", {type: "button", class: "kb-button", "data-testid": "inline-button",
                                 "data-callback-data": button.callback_data, text: button.text});
      if (onButton) node.addEventListener("click", () => onButton(message, button, node));
      else node.disabled = true;
      line.append(node);
    }
    keyboard.append(line);
  }
  return keyboard;
}

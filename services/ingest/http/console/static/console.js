// convmem console: the little the server cannot do. Plain script, no library, no build.
"use strict";

// Forms that delete ask first, naming what goes.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// A conversation's new turns, live: the conversation's event stream (the session cookie
// goes with it on this origin) shows the reply as it is written; when it is complete, the
// turns recorded since the last one shown are fetched as rows and appended.
function followConversation(table) {
  const id = table.dataset.conversation;
  const body = table.tBodies[0];
  const live = document.getElementById("live");
  const typing = document.getElementById("typing");
  let fetching = Promise.resolve();
  const pieces = new Map();

  const state = (name, text) => { live.dataset.state = name; live.textContent = text; };

  const catchUp = () => {
    fetching = fetching.then(async () => {
      const after = table.dataset.lastSeq || "0";
      const answer = await fetch(`/console/conversations/${id}/turns?after_seq=${after}`, {credentials: "same-origin"});
      if (!answer.ok) return;
      const html = (await answer.text()).trim();
      if (!html) return;
      const holder = document.createElement("tbody");
      holder.innerHTML = html;
      for (const row of Array.from(holder.rows)) {
        if (document.getElementById(row.id)) continue;
        row.classList.add("new");
        body.appendChild(row);
        table.dataset.lastSeq = row.dataset.seq;
      }
    }).catch(() => undefined);
    return fetching;
  };

  const events = new EventSource(`/console/conversations/${id}/events`);
  events.onopen = () => { state("live", "live"); catchUp(); };
  events.onerror = () => state("reconnecting", "reconnecting…");
  events.addEventListener("token", (e) => {
    const frame = JSON.parse(e.data);
    const text = (frame.offset === 0 ? "" : (pieces.get(frame.message_id) || "").slice(0, frame.offset)) + frame.text;
    pieces.set(frame.message_id, text);
    typing.hidden = false;
    typing.textContent = `assistant is writing: ${text}`;
  });
  events.addEventListener("reply", (e) => {
    const frame = JSON.parse(e.data);
    pieces.delete(frame.message_id);
    typing.hidden = true;
    // The reply is published before it is recorded: ask again until its row is there.
    let tries = 0;
    const until = async () => {
      await catchUp();
      const shown = Array.from(body.rows).some((r) => r.dataset.message === frame.message_id);
      if (!shown && tries++ < 20) setTimeout(until, 300);
    };
    until();
  });
  // Turns that expect no reply (history from another system) show on the next poll.
  setInterval(catchUp, 15000);
}

const turns = document.getElementById("turns");
if (turns) followConversation(turns);

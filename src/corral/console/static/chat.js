// The test chat: posts each question (with the conversation so far, kept only in this page)
// and renders the server-sent events of the answer as they arrive.
(() => {
  const chat = document.getElementById("chat");
  const turns = document.getElementById("turns");
  const form = document.getElementById("ask");
  const input = document.getElementById("message");
  const send = document.getElementById("send");
  const state = document.getElementById("state");
  let history = [];
  let session = null;

  function add(kind, text) {
    const item = document.createElement("li");
    item.className = `turn ${kind}`;
    if (text) item.textContent = text;
    turns.appendChild(item);
    item.scrollIntoView({block: "end"});
    return item;
  }

  function answerView(item) {
    const tools = document.createElement("ul");
    tools.className = "tools";
    const text = document.createElement("div");
    text.className = "text";
    const footer = document.createElement("div");
    footer.className = "footer";
    item.append(tools, text, footer);
    return {tools, text, footer, model: null, usage: null};
  }

  function render(view, event) {
    if (event.type === "content") {
      view.text.textContent += event.text;
    } else if (event.type === "tool_calls") {
      for (const call of event.calls) {
        const line = document.createElement("li");
        line.className = call.outcome === "ok" ? "tool" : "tool failed";
        line.textContent = `tool ${call.name}(${call.arguments}) → ${call.outcome}`;
        view.tools.appendChild(line);
      }
    } else if (event.type === "answered") {
      view.model = event.model;
    } else if (event.type === "usage") {
      view.usage = event;
    }
    const parts = [];
    if (view.model) parts.push(`model ${view.model}`);
    if (view.usage) {
      const u = view.usage;
      parts.push(`${u.prompt_tokens} prompt + ${u.completion_tokens} completion = ${u.total_tokens} tokens`);
    }
    view.footer.textContent = parts.join(" · ");
  }

  async function ask(message) {
    add("user", message);
    const item = add("assistant", "");
    const view = answerView(item);
    send.disabled = true;
    state.textContent = "answering…";
    state.classList.add("on");
    let failed = null;
    try {
      const response = await fetch(chat.dataset.stream, {
        method: "POST",
        headers: {"content-type": "application/json"},
        body: JSON.stringify({message, history, session}),
      });
      if (!response.ok || !response.body) throw new Error(`the console answered ${response.status}`);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (!data) continue;
          const event = JSON.parse(data);
          if (event.type === "error") failed = event.message;
          else if (event.type === "done") session = event.session;
          else render(view, event);
        }
      }
    } catch (err) {
      failed = String(err.message || err);
    }
    if (failed) {
      add("error", failed);
    } else {
      history.push({role: "user", content: message}, {role: "assistant", content: view.text.textContent});
      item.dataset.done = "true";
    }
    send.disabled = false;
    state.textContent = "";
    state.classList.remove("on");
    input.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!message) return;
    input.value = "";
    ask(message);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  document.getElementById("reset").addEventListener("click", () => {
    history = [];
    session = null;
    turns.replaceChildren();
  });
})();

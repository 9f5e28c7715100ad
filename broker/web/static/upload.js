// The minimal uploader: ask the broker, POST straight to storage, poll the verdict.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  const tokenInput = document.getElementById("token");
  const statusBox = document.getElementById("status");
  const progress = document.getElementById("progress");
  tokenInput.value = sessionStorage.getItem("broker-token") || "";

  function show(state, html) {
    statusBox.hidden = false;
    statusBox.dataset.state = state;
    statusBox.innerHTML = html;
  }
  function text(value) {
    const span = document.createElement("span");
    span.textContent = value;
    return span.innerHTML;
  }
  async function api(path, options) {
    const token = tokenInput.value.trim();
    const headers = Object.assign({ "Authorization": "Bearer " + token }, options && options.headers);
    const response = await fetch(path, Object.assign({}, options, { headers }));
    const body = response.status === 204 ? null : await response.json();
    if (!response.ok) throw new Error(body && body.detail ? body.detail + " (" + body.code + ")" : response.statusText);
    return body;
  }
  function postToStorage(upload, file) {
    return new Promise(function (resolve, reject) {
      const data = new FormData();
      Object.entries(upload.fields).forEach(function ([k, v]) { data.append(k, v); });
      data.append("file", file);  // the file must come last
      const xhr = new XMLHttpRequest();
      xhr.open("POST", upload.url);
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) progress.value = Math.round((e.loaded / e.total) * 100);
      };
      xhr.onload = function () {
        if (xhr.status >= 200 && xhr.status < 300) resolve();
        else reject(new Error("storage refused the upload (HTTP " + xhr.status + ")"));
      };
      xhr.onerror = function () { reject(new Error("network error while uploading")); };
      xhr.send(data);
    });
  }
  async function waitForVerdict(id) {
    for (let i = 0; i < 120; i++) {
      const record = await api("/v1/uploads/" + encodeURIComponent(id));
      if (record.status !== "pending" && record.status !== "processing") return record;
      show("checking", "Checking " + text(record.filename) + "…");
      await new Promise(function (r) { setTimeout(r, 500); });
    }
    throw new Error("the file is still being checked; look again later");
  }
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const file = document.getElementById("file").files[0];
    if (!file) return;
    sessionStorage.setItem("broker-token", tokenInput.value.trim());
    progress.hidden = false;
    progress.value = 0;
    try {
      show("uploading", "Uploading " + text(file.name) + "…");
      const created = await api("/v1/uploads", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          profile: document.getElementById("profile").value,
          filename: file.name,
          content_type: file.type || "application/octet-stream",
          size: file.size,
        }),
      });
      await postToStorage(created.upload, file);
      progress.value = 100;
      const record = await waitForVerdict(created.id);
      if (record.status === "ready") {
        const link = record.url || record.download_url;
        show("ready", "Ready: <a href=\"" + text(link) + "\">" + text(record.filename) + "</a>");
      } else if (record.status === "rejected") {
        show("rejected", "Rejected: " + text(record.reason.message) + " (" + text(record.reason.code) + ")");
      } else {
        show("error", "Upload " + text(record.status));
      }
    } catch (error) {
      show("error", text(error.message));
    }
  });
})();

// Installer page: tell the portal the setup is done (installFinish), or offer a retry.
(function () {
  "use strict";
  const root = document.getElementById("install");
  const status = document.getElementById("install-status");

  function show(text, isError) {
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("status-error", Boolean(isError));
  }

  async function run() {
    const $b24 = await window.B24Js.initializeB24Frame();
    if (root.dataset.state === "error") {
      document.getElementById("retry").addEventListener("click", () => $b24.parent.reloadWindow());
      await $b24.parent.fitWindow();
      return;
    }
    if ($b24.isInstallMode) {
      show("Installation complete. Opening the app…");
      await $b24.installFinish();
    } else {
      show("The app is already installed.");
    }
  }

  run().catch((error) => show("Could not reach the portal: " + (error && error.message ? error.message : error), true));
})();

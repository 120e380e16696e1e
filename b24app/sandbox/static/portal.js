/*
 * Parent side of the @bitrix24/b24jssdk postMessage protocol, as a Bitrix24 portal page plays it.
 *
 * The frame sends strings `command:params:callbackKey:appSid` (params may be empty or JSON) to this
 * window; the answer goes back to the frame as `callbackKey:JSON`, posted only to the frame's origin.
 * Messages from another origin, another window, or with a different APP_SID are ignored.
 * Configuration comes from the `data-frame` attribute rendered by the server (no inline script).
 */
(function () {
  "use strict";

  // The language switch of the top bar submits on change (it works without script through its button).
  var languages = document.querySelector(".lang-switch select");
  if (languages) {
    languages.addEventListener("change", function () {
      languages.form.submit();
    });
  }
})();

(function () {
  "use strict";

  var holder = document.getElementById("b24-frame");
  if (!holder) {
    return;
  }
  var config = JSON.parse(holder.getAttribute("data-frame"));
  var iframe = document.getElementById("b24-app-frame");
  var form = document.getElementById("b24-frame-form");

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
      keepalive: true
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("portal answered " + response.status);
      }
      return response.json();
    });
  }

  function parse(raw) {
    var parts = raw.split(":");
    if (parts.length < 3) {
      return null;
    }
    var params = parts.slice(1, -2).join(":");
    var value = params;
    if (params && (params.charAt(0) === "{" || params.charAt(0) === "[")) {
      try {
        value = JSON.parse(params);
      } catch (e) {
        value = params;
      }
    }
    return { command: parts[0], params: value, key: parts[parts.length - 2], sid: parts[parts.length - 1] };
  }

  function reply(key, data) {
    if (!key || !iframe.contentWindow) {
      return;
    }
    var payload = data === undefined ? "" : JSON.stringify(data);
    iframe.contentWindow.postMessage(key + ":" + payload, config.frameOrigin);
  }

  function size(value) {
    if (typeof value === "number" || /^\d+$/.test(String(value))) {
      return value + "px";
    }
    return String(value);
  }

  var handlers = {
    getInitData: function () {
      return config.init;
    },
    setInstall: function (params) {
      return post(config.endpoints.setInstall, params).then(function () {
        config.init.FIRST_RUN = false;
        return {};
      });
    },
    setInstallFinish: function () {
      return post(config.endpoints.installFinish).then(function (result) {
        config.reloadAfterReply = true;
        return result;
      });
    },
    refreshAuth: function () {
      return post(config.endpoints.refreshAuth).then(function (auth) {
        config.init.AUTH_ID = auth.AUTH_ID;
        config.init.REFRESH_ID = auth.REFRESH_ID;
        config.init.AUTH_EXPIRES = auth.AUTH_EXPIRES;
        return {
          AUTH_ID: auth.AUTH_ID,
          REFRESH_ID: auth.REFRESH_ID,
          AUTH_EXPIRES: auth.AUTH_EXPIRES,
          MEMBER_ID: auth.MEMBER_ID,
          DOMAIN: auth.DOMAIN,
          PROTOCOL: auth.PROTOCOL
        };
      });
    },
    resizeWindow: function (params) {
      if (params && params.height) {
        iframe.style.height = size(params.height);
      }
      if (params && params.width) {
        iframe.style.width = size(params.width);
      }
      return {};
    },
    setTitle: function (params) {
      var title = params && typeof params === "object" ? params.title : params;
      document.getElementById("pagetitle").textContent = String(title || "");
      return {};
    },
    reloadWindow: function () {
      config.reloadAfterReply = true;
      return {};
    },
    setScroll: function (params) {
      window.scrollTo(0, Number((params && params.scroll) || 0));
      return {};
    },
    setAppOption: function (params) {
      config.init.APP_OPTIONS[params.name] = params.value;
      return {};
    },
    setUserOption: function (params) {
      config.init.USER_OPTIONS[params.name] = params.value;
      return {};
    },
    closeApplication: function () {
      return {};
    }
  };

  window.addEventListener("message", function (event) {
    if (event.origin !== config.frameOrigin || event.source !== iframe.contentWindow) {
      return;
    }
    if (typeof event.data !== "string") {
      return;
    }
    var message = parse(event.data);
    if (!message || message.sid !== config.appSid) {
      return;
    }
    post(config.endpoints.log, { command: message.command, params: message.params }).catch(function () {});
    var handler = handlers[message.command];
    Promise.resolve()
      .then(function () {
        return handler ? handler(message.params) : {};
      })
      .catch(function (error) {
        return { error: String(error) };
      })
      .then(function (result) {
        reply(message.key, result);
        if (config.reloadAfterReply) {
          window.setTimeout(function () {
            window.location.reload();
          }, 100);
        }
      });
  });

  form.submit();
})();

// The page after a re-authorization (GET /oauth/callback), opened in its own top-level window
// (not in the portal's frame, so no LANG): localized by the browser's language.

import { setLang, translatePage } from "./i18n.js";

setLang((navigator.language || "en").slice(0, 2));
translatePage();

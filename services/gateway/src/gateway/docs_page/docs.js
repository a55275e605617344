// Starts Swagger UI on the gateway's OpenAPI document. A file of its own, not an inline script, so
// the page's Content-Security-Policy can forbid inline scripts.
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null, // Swagger UI would otherwise send the document to an online validator
  });
});

// /docs: Swagger UI on the service's own OpenAPI document (a file, not an inline script: the CSP allows only 'self').
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });

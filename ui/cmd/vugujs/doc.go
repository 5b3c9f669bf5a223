// Command vugujs writes static/vugu-render.js: the DOM helper script of vugu's
// renderer (the constant jsHelperScript of github.com/vugu/vugu/domrender, in the
// version go.mod pins), as a file. vugu installs that helper with window.eval, which
// the page's Content-Security-Policy forbids; served as a file it is allowed by
// script-src 'self', and static/app.js turns the renderer's eval of it into a no-op.
package main

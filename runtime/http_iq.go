package runtime

import "net/http"

// iqRoutes registers this part's endpoints (issue 14, filled by its branch).
func (a *App) iqRoutes(mux *http.ServeMux) { _ = mux }

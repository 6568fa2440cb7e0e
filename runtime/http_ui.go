package runtime

import "net/http"

// uiRoutes registers this part's endpoints (issue 14, filled by its branch).
func (a *App) uiRoutes(mux *http.ServeMux) { _ = mux }

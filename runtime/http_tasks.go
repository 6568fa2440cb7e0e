package runtime

import "net/http"

// tasksRoutes registers this part's endpoints (issue 14, filled by its branch).
func (a *App) tasksRoutes(mux *http.ServeMux) { _ = mux }

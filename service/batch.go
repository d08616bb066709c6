package service

import "net/http"

func (s *Server) batch(w http.ResponseWriter, r *http.Request, rest string) {
	s.fail(w, r, status(http.StatusNotImplemented, "batch requests are not implemented yet"))
}

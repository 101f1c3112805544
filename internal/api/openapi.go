package api

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// OpenAPI is the OpenAPI 3.1 description of this API, kept in the repository beside the routes; a test
// fails when the two disagree.
//
//go:embed openapi.json
var OpenAPI []byte

func serveOpenAPI(c *gin.Context) { c.Data(http.StatusOK, "application/json", OpenAPI) }

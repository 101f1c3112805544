package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/auth"
)

// routes registers the API. Every route under /api/v1 except the auth endpoints requires a credential
// and exactly one permission; the README's RBAC matrix lists which. openapi.json documents each route,
// and a test keeps the two in step.
//
// Every process registers every route, and a route of a role the process does not run answers 404 before
// anything else (credentials included): the REST API needs the api role (serveAPI), the push routes the
// ingest role (an ingest service). So GET and POST /api/v1/logs, one REST and one push route, answer
// alike whatever the roles, and a client sent to the wrong process learns only that the route is not
// there.
func (s *server) routes(r *gin.Engine, serveAPI bool) {
	rest := servesRole(serveAPI, "api")
	edge := s.publicEdge() // the routes that need no credential
	r.POST("/oauth/token", rest, edge, s.oauthToken)

	v1 := r.Group("/api/v1", rest)
	v1.POST("/auth/login", edge, s.login)
	v1.POST("/auth/refresh", edge, s.refresh)
	v1.POST("/auth/logout", edge, s.logout)
	v1.POST("/auth/accept-invite", edge, s.acceptInvite)

	op := v1.Group("/operator", edge, s.operatorOnly())
	op.GET("/tenants", s.operatorListTenants)
	op.POST("/tenants", s.operatorCreateTenant)
	op.POST("/tenants/:id/suspend", s.operatorSuspendTenant)
	op.POST("/tenants/:id/resume", s.operatorResumeTenant)
	op.DELETE("/tenants/:id", s.operatorDeleteTenant)
	op.GET("/tenants/:id/limits", s.operatorGetLimits)
	op.PATCH("/tenants/:id/limits", s.operatorSetLimits)
	op.GET("/health", s.operatorHealth)

	a := v1.Group("", s.authenticate(), s.rateLimit())
	read, inventory, access, owner := require(auth.PermRead), require(auth.PermInventory), require(auth.PermAccess),
		require(auth.PermTenant)
	// Reads that may hold a database connection for seconds take a slot of their tenant's share (heavy.go).
	heavy := s.heavyRead

	a.POST("/auth/password", s.changePassword)
	a.GET("/auth/tenants", s.listMyTenants)
	a.POST("/auth/switch", s.switchTenant)

	a.GET("/tenant", read, s.getTenant)
	a.PATCH("/tenant", access, s.updateTenant)
	a.DELETE("/tenant", owner, s.deleteTenant)

	a.GET("/hosts", read, s.listHosts)
	a.POST("/hosts", inventory, s.createHost)
	a.GET("/hosts/:id", read, s.getHost)
	a.PATCH("/hosts/:id", s.requireOn(auth.PermInventory, lookupHost), s.updateHost)
	a.DELETE("/hosts/:id", s.requireOn(auth.PermInventory, lookupHost), s.deleteHost)

	a.GET("/checks", read, s.listChecks)
	a.POST("/checks", inventory, s.createCheck)
	a.GET("/checks/:id", read, s.getCheck)
	a.PATCH("/checks/:id", s.requireOn(auth.PermInventory, lookupCheck), s.updateCheck)
	a.DELETE("/checks/:id", s.requireOn(auth.PermInventory, lookupCheck), s.deleteCheck)
	a.GET("/checks/:id/results", read, heavy, s.listCheckResults)
	a.POST("/checks/:id/run", s.requireOn(auth.PermInventory, lookupCheck), s.runCheck)

	a.GET("/alert-rules", read, s.listAlertRules)
	a.POST("/alert-rules", inventory, s.createAlertRule)
	a.POST("/alert-rules/backtest", inventory, heavy, s.backtestAlertRule)
	a.GET("/alert-rules/:id", read, s.getAlertRule)
	a.PATCH("/alert-rules/:id", s.requireOn(auth.PermInventory, lookupAlertRule), s.updateAlertRule)
	a.DELETE("/alert-rules/:id", s.requireOn(auth.PermInventory, lookupAlertRule), s.deleteAlertRule)
	a.GET("/alerts", read, s.listAlerts)
	a.GET("/alerts/:id", read, s.getAlert)
	a.POST("/alerts/:id/ack", s.requireOn(auth.PermInventory, lookupAlert), s.ackAlert)
	a.POST("/alerts/:id/unack", s.requireOn(auth.PermInventory, lookupAlert), s.unackAlert)
	a.GET("/silences", read, s.listSilences)
	a.POST("/silences", inventory, s.createSilence)
	a.GET("/silences/:id", read, s.getSilence)
	a.PATCH("/silences/:id", s.requireOn(auth.PermInventory, lookupSilence), s.updateSilence)
	a.DELETE("/silences/:id", s.requireOn(auth.PermInventory, lookupSilence), s.expireSilence)
	a.GET("/maintenance-windows", read, s.listMaintenanceWindows)
	a.POST("/maintenance-windows", inventory, s.createMaintenanceWindow)
	a.GET("/maintenance-windows/:id", read, s.getMaintenanceWindow)
	a.PATCH("/maintenance-windows/:id", s.requireOn(auth.PermInventory, lookupMaintenanceWindow), s.updateMaintenanceWindow)
	a.DELETE("/maintenance-windows/:id", s.requireOn(auth.PermInventory, lookupMaintenanceWindow), s.deleteMaintenanceWindow)

	a.GET("/slos", read, s.listSLOs)
	a.POST("/slos", inventory, s.createSLO)
	a.GET("/slos/:id", read, s.getSLO)
	a.PATCH("/slos/:id", s.requireOn(auth.PermInventory, lookupSLO), s.updateSLO)
	a.DELETE("/slos/:id", s.requireOn(auth.PermInventory, lookupSLO), s.deleteSLO)
	a.GET("/sla", read, heavy, s.getSLA)
	report := s.requireOn(auth.PermAccess, lookupReport)
	a.GET("/reports", access, s.listReports)
	a.POST("/reports", access, s.createReport)
	a.GET("/reports/:id", report, s.getReport)
	a.PATCH("/reports/:id", report, s.updateReport)
	a.DELETE("/reports/:id", report, s.deleteReport)
	a.GET("/reports/:id/runs", report, s.listReportRuns)
	a.POST("/reports/:id/send-now", report, s.sendReportNow)

	a.GET("/users", read, s.listUsers)
	a.POST("/users", access, s.invite)
	a.GET("/users/:id", read, s.getUser)
	a.PATCH("/users/:id", s.requireOn(auth.PermAccess, lookupUser), s.updateUser)
	a.DELETE("/users/:id", s.requireOn(auth.PermAccess, lookupUser), s.removeUser)
	a.GET("/invitations", access, s.listInvitations)
	a.DELETE("/invitations/:id", s.requireOn(auth.PermAccess, lookupInvitation), s.revokeInvitation)

	a.GET("/api-keys", access, s.listAPIKeys)
	a.POST("/api-keys", access, s.createAPIKey)
	a.DELETE("/api-keys/:id", s.requireOn(auth.PermAccess, lookupAPIKey), s.revokeAPIKey)

	a.GET("/oauth-clients", access, s.listOAuthClients)
	a.POST("/oauth-clients", access, s.createOAuthClient)
	a.DELETE("/oauth-clients/:id", s.requireOn(auth.PermAccess, lookupOAuthClient), s.revokeOAuthClient)

	// Notification channels and the delivery log.
	channel := s.requireOn(auth.PermAccess, lookupChannel)
	a.GET("/channels", access, s.listChannels)
	a.POST("/channels", access, s.createChannel)
	a.GET("/channels/:id", channel, s.getChannel)
	a.PATCH("/channels/:id", channel, s.updateChannel)
	a.DELETE("/channels/:id", channel, s.deleteChannel)
	a.POST("/channels/:id/test", channel, s.testChannel)
	a.GET("/notifications", access, s.listNotifications)
	a.GET("/notifications/:id", s.requireOn(auth.PermAccess, lookupNotification), s.getNotification)

	// SNMP trap credentials: the communities and v3 users the tenant's devices send traps with (traps.go).
	trapCredential := s.requireOn(auth.PermAccess, lookupTrapCredential)
	a.GET("/trap-credentials", access, s.listTrapCredentials)
	a.POST("/trap-credentials", access, s.createTrapCredential)
	a.GET("/trap-credentials/:id", trapCredential, s.getTrapCredential)
	a.PATCH("/trap-credentials/:id", trapCredential, s.updateTrapCredential)
	a.DELETE("/trap-credentials/:id", trapCredential, s.deleteTrapCredential)

	a.GET("/audit", access, s.listAudit)

	a.GET("/bi/credentials", access, s.listBICredentials)
	a.POST("/bi/credentials", access, s.createBICredential)
	a.GET("/bi/credentials/:id", s.requireOn(auth.PermAccess, lookupBICredential), s.getBICredential)
	a.POST("/bi/credentials/:id/rotate", s.requireOn(auth.PermAccess, lookupBICredential), s.rotateBICredential)
	a.DELETE("/bi/credentials/:id", s.requireOn(auth.PermAccess, lookupBICredential), s.revokeBICredential)

	a.GET("/logs", read, heavy, s.searchLogs)
	// The live stream takes a credential in Authorization, or a stream ticket in ?ticket= (browsers'
	// EventSource sends no headers); a ticket is made by the route below and opens nothing else.
	v1.GET("/stream", s.authenticateStream(), s.rateLimit(), read, s.liveStream)
	a.POST("/stream/ticket", read, s.createStreamTicket)

	a.GET("/query/range", read, heavy, s.queryRange)
	a.GET("/query/latest", read, heavy, s.queryLatest)
	a.GET("/series", read, heavy, s.listSeries)
	a.GET("/overview", read, heavy, s.overview)

	// The Prometheus HTTP API's read side, for Grafana and PromQL tools (prometheus.go).
	s.promRoutes(r, rest, read, heavy)

	// Pushes from agents: our JSON, InfluxDB line protocol (v1 and v2 paths), Prometheus remote write, logs,
	// OTLP.
	// Limited in samples per second by the ingest service rather than in requests.
	push := servesRole(s.ingest != nil, "ingest")
	in := r.Group("/api/v1", push, s.authenticate(), require(auth.PermIngest))
	in.POST("/ingest", s.ingestJSON)
	in.POST("/write", s.ingestInfluxV1)
	in.POST("/prom/write", s.ingestRemoteWrite)
	in.POST("/logs", s.ingestLogs)
	r.Group("/api/v2", push, s.authenticate(), require(auth.PermIngest)).POST("/write", s.ingestInfluxV2)
	// OpenTelemetry's OTLP/HTTP, at the paths its exporters append to an endpoint (otlp.go).
	otlp := r.Group("/v1", push, s.authenticate(), require(auth.PermIngest))
	otlp.POST("/metrics", s.otlpMetrics)
	otlp.POST("/logs", s.otlpLogs)
}

// servesRole lets a request through to the routes of a role the process runs; for any other role it
// answers 404, as for a route that does not exist, saying which role would serve it.
func servesRole(serving bool, role string) gin.HandlerFunc {
	if serving {
		return func(c *gin.Context) { c.Next() }
	}
	return func(c *gin.Context) {
		writeProblem(c, http.StatusNotFound, "no such route", "this server does not run the "+role+" role")
	}
}

package auth

import (
	"testing"

	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// TestMain lets the token tests reach a real PostgreSQL through the project's harness.
func TestMain(m *testing.M) { dbtest.Main(m) }

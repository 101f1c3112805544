package bi_test

import (
	"testing"

	"github.com/infrawatch/infrawatch/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

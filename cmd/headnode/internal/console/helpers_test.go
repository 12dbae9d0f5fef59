package console

import "log/slog"

var nullLog = slog.New(slog.DiscardHandler)

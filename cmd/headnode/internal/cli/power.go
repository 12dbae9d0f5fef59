package cli

// Node power commands. Scaffolding until the power part exists.
var (
	runOn    = notYet("on")
	runOff   = notYet("off")
	runAlert = notYet("alert")
	runHub   = notYet("hub")
	runLEDs  = notYet("leds")
)

package cli

// The status LED command. Scaffolding until the display part exists.
var runLED = notYet("led")

package api

// Display reports the LCD and the status LED. Scaffolding: the display
// part defines its fields.
type Display struct{}

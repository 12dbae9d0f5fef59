package machine

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Only this package, the emulators themselves and `headnode sim` may know
// that hardware can be emulated: no other production file imports hw/emu.
// simspec stays free of the emulators, so that the configuration can use
// it without them.
func TestOnlyTheSeamImportsTheEmulators(t *testing.T) {
	const module = "github.com/headnode/headnode/"
	root := filepath.Join("..", "..")
	allowed := []string{"hw/machine/", "hw/emu/", "cmd/headnode/internal/sim/"}
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p != module+"hw/emu" && !strings.HasPrefix(p, module+"hw/emu/") {
				continue
			}
			ok := false
			for _, a := range allowed {
				ok = ok || strings.HasPrefix(rel, a)
			}
			if !ok || strings.HasPrefix(rel, "hw/machine/simspec/") {
				t.Errorf("%s imports %s", rel, p)
			}
		}
		return nil
	})
	if err != nil || files < 100 {
		t.Fatalf("read %d files: %v", files, err)
	}
}

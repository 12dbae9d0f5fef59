package console

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// logFiles keep a console's sealed records across daemon restarts, in two
// files that are only ever appended to, name.log and name.log.1 before it:
// when name.log is full it replaces name.log.1 and a new one begins. Appending writes each record once, which is what an SD
// card's wear asks for, and the console batches its appends. When more
// than a ring's worth arrived since the last flush (a flood), only what
// the ring still holds is written. A new file begins before a write would
// take name.log past a ring's size, so the two files hold at least the
// last ring's worth (what a restart loads back) and at most twice that.
type logFiles struct {
	path    string // dir/name.log
	segment int64  // rotate past this many bytes
	size    int64  // of name.log
}

func newLogFiles(dir, name string, ringSize int) *logFiles {
	l := &logFiles{path: filepath.Join(dir, name+".log"), segment: int64(ringSize)}
	if st, err := os.Stat(l.path); err == nil {
		l.size = st.Size()
	}
	return l
}

// load reads the records back, oldest first. Missing files are an empty
// log; a torn last record is dropped.
func (l *logFiles) load() ([]Record, error) {
	var out []Record
	for _, p := range []string{l.path + ".1", l.path} {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, decode(b)...)
	}
	return out, nil
}

// append adds encoded records to the log.
func (l *logFiles) append(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if l.size > 0 && l.size+int64(len(b)) > l.segment {
		if err := os.Rename(l.path, l.path+".1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		l.size = 0
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	n, err := f.Write(b)
	l.size += int64(n)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

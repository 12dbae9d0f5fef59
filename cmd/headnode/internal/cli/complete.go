package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
)

// Shell completion comes from the same place as the help: the command
// table (commandNames, commands) and each command's usage text. A
// command's first usage line is its synopsis, "usage: headnode on|off
// [pN ...] [--json]": each word after the command is one argument
// position, "a|b" are the words it takes, pN is a node name, "..." repeats
// the last position, UPPER-CASE words are values to type (nothing to
// offer); the flags are every --flag the usage text names, those followed
// by an UPPER-CASE word taking a value. So a command, flag or argument
// added to the help is completed without more work, and one that is not
// in the help is not offered.

// bashCompletion is the script the package installs as
// /usr/share/bash-completion/completions/headnode: at each Tab it asks
// `headnode __complete WORDS...` (the words typed so far, the one being
// completed last) for the candidates; ":files" asks for file names.
const bashCompletion = `# bash completion for headnode(8), written by ` + "`headnode __bash-completion`" + `.
# The candidates come from the command itself: headnode __complete WORDS...
_headnode() {
	local cur=${COMP_WORDS[COMP_CWORD]} out IFS=$'\n'
	out=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return 0
	if [ "$out" = ":files" ]; then
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
	else
		COMPREPLY=($(compgen -W "$out" -- "$cur"))
	fi
}
complete -F _headnode headnode
`

// argPosition is one argument position of a synopsis.
type argPosition struct {
	words []string // literal words it takes
	nodes bool     // a node name (pN)
}

var (
	flagGroup = regexp.MustCompile(`\[--[^\]]*\]`)
	flagWord  = regexp.MustCompile(`--[a-z][a-z0-9-]*`)
	valueFlag = regexp.MustCompile(`(--[a-z][a-z0-9-]*)[ =]([A-Z][A-Z]+)\b`)
	literal   = regexp.MustCompile(`^[a-z][a-z0-9+-]*$`)
)

// synopsis returns a usage's argument positions and whether the last one
// repeats.
func synopsis(usage string) (pos []argPosition, repeat bool) {
	line, _, _ := strings.Cut(usage, "\n")
	f := strings.Fields(line)
	if len(f) < 3 {
		return nil, false
	}
	s := strings.Join(f[3:], " ")
	s = flagGroup.ReplaceAllString(s, "")
	s = valueFlag.ReplaceAllString(s, "")
	s = flagWord.ReplaceAllString(s, "")
	join := false
	for _, tok := range strings.Fields(s) {
		t := strings.Trim(tok, "[]()")
		switch {
		case t == "|":
			join = true
			continue
		case t == "...":
			repeat = true
			continue
		case t == "flags", t == "":
			continue
		}
		var p argPosition
		for _, w := range strings.Split(t, "|") {
			switch {
			case w == "pN":
				p.nodes = true
			case literal.MatchString(w):
				p.words = append(p.words, w)
			}
		}
		if join && len(pos) > 0 {
			last := &pos[len(pos)-1]
			last.words = append(last.words, p.words...)
			last.nodes = last.nodes || p.nodes
		} else {
			pos = append(pos, p)
		}
		join = false
	}
	return pos, repeat
}

// commandFlags returns the flags a command's usage names and those of
// them that take a value. sim's come from its flag set (its help lists
// them from there).
func commandFlags(name string) (all []string, takesValue map[string]bool) {
	takesValue = map[string]bool{}
	u := commands[name].usage()
	for _, m := range valueFlag.FindAllStringSubmatch(u, -1) {
		takesValue[m[1]] = true
	}
	if name == "sim" {
		newSimFlags().fs.VisitAll(func(f *flag.Flag) {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				takesValue["--"+f.Name] = true
			}
		})
	}
	for _, fl := range flagWord.FindAllString(u, -1) {
		if !slices.Contains(all, fl) {
			all = append(all, fl)
		}
	}
	return append(all, "--help"), takesValue
}

// globalValueFlags are the flags taken before or after any command.
var globalValueFlags = []string{"--config", "--socket"}

// completions returns the candidates for the last of words (the command
// line after "headnode", the word being completed last, maybe empty),
// every candidate whatever its prefix (the shell filters), or files true
// when a file name is wanted. nodes lists the node names.
func completions(words []string, nodes func() []string) (cands []string, files bool) {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	if n := len(before); n > 0 && slices.Contains(globalValueFlags, before[n-1]) {
		return nil, true
	}
	var args []string
	for i := 0; i < len(before); i++ {
		if slices.Contains(globalValueFlags, before[i]) {
			i++ // and its value
			continue
		}
		args = append(args, before[i])
	}
	if len(args) == 0 || args[0] == "help" && len(args) == 1 {
		if strings.HasPrefix(cur, "-") {
			return append(slices.Clone(globalValueFlags), "--help"), false
		}
		if len(args) == 0 {
			return append(slices.Clone(commandNames), "help"), false
		}
		return slices.Clone(commandNames), false
	}
	name := args[0]
	if _, ok := commands[name]; !ok {
		return nil, false
	}
	all, takesValue := commandFlags(name)
	if last := args[len(args)-1]; len(args) > 1 && takesValue[last] {
		return nil, strings.Contains(strings.ToLower(commands[name].usage()), last+" file")
	}
	if strings.HasPrefix(cur, "-") {
		return all, false
	}
	// The argument position being completed: the positional words before.
	n := 0
	for i := 1; i < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			if takesValue[args[i]] {
				i++
			}
			continue
		}
		n++
	}
	pos, repeat := synopsis(commands[name].usage())
	if n >= len(pos) {
		if !repeat || len(pos) == 0 {
			return nil, false
		}
		n = len(pos) - 1
	}
	p := pos[n]
	cands = slices.Clone(p.words)
	if p.nodes {
		cands = append(cands, nodes()...)
	}
	return cands, false
}

// runComplete prints the candidates, one a line. Node names come from the
// running daemon (the nodes of the boards it found), else from the
// configuration's [[nodes]]; asking the daemon is bounded to half a
// second, so a Tab never hangs.
func runComplete(words []string, stdout io.Writer) int {
	env := &Env{Stdout: io.Discard, Stderr: io.Discard}
	nodes := func() []string {
		var names []string
		env.ConfigPath = config.DefaultPath
		if _, err := env.takeGlobalFlags(words); err != nil {
			return nil
		}
		if c, err := env.client(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			if s, err := c.Status(ctx); err == nil {
				for _, nd := range s.Power.Nodes {
					names = append(names, nd.Name)
				}
				return names
			}
		}
		if cfg, err := env.loadConfig(); err == nil {
			for _, nd := range cfg.Nodes {
				names = append(names, nd.Name)
			}
		}
		return names
	}
	cands, files := completions(words, nodes)
	if files {
		fmt.Fprintln(stdout, ":files")
		return ExitOK
	}
	for _, c := range cands {
		fmt.Fprintln(stdout, c)
	}
	return ExitOK
}

// What generated Go does: goroutines across threads, a loopback HTTP
// server and client, a child process, signals to itself, files in the
// working directory, timers. Prints "ok" when every part worked.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"
)

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		os.Exit(1)
	}
}

func main() {
	runtime.GOMAXPROCS(4)
	var wg sync.WaitGroup
	sums := make(chan int, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			s := 0
			for k := 0; k < 100000; k++ {
				s += k % (n + 1)
			}
			sums <- s
		}(i)
	}
	wg.Wait()
	close(sums)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err, "listen")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})}
	go srv.Serve(ln)
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	must(err, "http get")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" {
		must(fmt.Errorf("body %q", body), "http body")
	}
	srv.Close()

	out, err := exec.Command("/bin/echo", "child").Output()
	must(err, "exec")
	if string(out) != "child\n" {
		must(fmt.Errorf("output %q", out), "exec output")
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	must(syscall.Kill(os.Getpid(), syscall.SIGUSR1), "kill")
	select {
	case <-sig:
	case <-time.After(5 * time.Second):
		must(fmt.Errorf("no SIGUSR1"), "signal")
	}

	_, err = os.Hostname()
	must(err, "hostname")
	data, err := json.Marshal(map[string]bool{"ok": true})
	must(err, "json")
	must(os.WriteFile("results.json", data, 0o644), "write results.json")
	timer := time.NewTimer(10 * time.Millisecond)
	<-timer.C
	fmt.Println("ok")
}

package queue

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A full disk is treated as a full queue: Put waits and retries, nothing is
// lost, nothing panics, and writing resumes once the reader frees room. The
// disk is a small tmpfs (the tests run as root, as CI does). With a sync
// policy, the room of a segment delivered before the syncer synced it comes
// back at once, not at the syncer's next sync (an hour here).
func TestDiskFullWaitsAndLosesNothing(t *testing.T) {
	for _, policy := range []string{SyncNone, SyncInterval} {
		t.Run(policy, func(t *testing.T) { testDiskFull(t, policy) })
	}
}

func testDiskFull(t *testing.T, policy string) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=3m"); err != nil {
		t.Fatalf("mounting a 3 MiB tmpfs on %s (the test needs root, as CI has): %v", dir, err)
	}
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	cfg := testConfig(t, dir)
	cfg.MaxBytes = 64 << 20 // far more than the disk: the disk fills first
	cfg.Sync, cfg.SyncInterval = policy, time.Hour
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	const n, per = 40000, 100 // about 6 MB of records: twice the disk
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i += per {
			if err := d.Put(context.Background(), sampleBatch(i, per)); err != nil {
				t.Errorf("Put: %v", err)
				return
			}
		}
	}()
	// Read nothing until the disk is full and the writer is retrying.
	deadline := time.Now().Add(30 * time.Second)
	for d.Stats.WriteErrors.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the disk never filled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := drain(t, d, n)
	wg.Wait()
	checkSequence(t, got, 0, n)
	t.Logf("write errors retried: %d", d.Stats.WriteErrors.Load())
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

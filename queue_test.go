package flowgo

import (
	"context"
	"errors"
	"testing"
	"time"
)

func batchOf(n int) *Batch {
	b := &Batch{}
	for range n {
		b.Next()
	}
	return b
}

func TestQueueBlocksWhenRecordBudgetIsSpent(t *testing.T) {
	q := NewQueue(10, 1<<30)
	ctx := context.Background()
	if err := q.Put(ctx, batchOf(6)); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(ctx, batchOf(4)); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := q.Put(short, batchOf(1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put on a full queue = %v; want it to block until the deadline", err)
	}
	if r, _, _, _ := q.Usage(); r != 10 {
		t.Errorf("records in use after a cancelled Put = %d; want 10", r)
	}
	done := make(chan error, 1)
	go func() { done <- q.Put(ctx, batchOf(3)) }()
	select {
	case err := <-done:
		t.Fatalf("Put returned %v before any budget was freed", err)
	case <-time.After(20 * time.Millisecond):
	}
	q.Done(<-q.Batches()) // frees 6
	if err := <-done; err != nil {
		t.Fatalf("Put after Done = %v", err)
	}
	if r, _, _, _ := q.Usage(); r != 7 {
		t.Errorf("records in use = %d; want 7", r)
	}
}

func TestQueueBoundsBytes(t *testing.T) {
	q := NewQueue(1000, 4096)
	big := batchOf(1)
	big.Arena.Copy(make([]byte, 3000))
	if err := q.Put(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	other := batchOf(1)
	other.Arena.Copy(make([]byte, 3000))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := q.Put(ctx, other); err == nil {
		t.Fatal("Put admitted a batch past the byte budget")
	}
	q.Done(<-q.Batches())
	if err := q.Put(context.Background(), other); err != nil {
		t.Fatalf("Put refused a batch on an empty queue: %v", err)
	}
}

func TestQueueAdmitsOversizedBatchWhenEmpty(t *testing.T) {
	q := NewQueue(5, 100)
	b := batchOf(50)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := q.Put(ctx, b); err != nil {
		t.Fatalf("a batch larger than the whole queue must still pass alone: %v", err)
	}
}

func TestQueueServesWaitersInOrder(t *testing.T) {
	q := NewQueue(1, 1<<30)
	ctx := context.Background()
	q.Put(ctx, batchOf(1))
	order := make(chan int, 3)
	for i := range 3 {
		go func() {
			q.Put(ctx, batchOf(1))
			order <- i
		}()
		time.Sleep(10 * time.Millisecond) // let waiter i queue up before i+1
	}
	for want := range 3 {
		q.Done(<-q.Batches())
		if got := <-order; got != want {
			t.Fatalf("waiter %d was served before waiter %d", got, want)
		}
	}
}

func TestQueuePutAfterClose(t *testing.T) {
	q := NewQueue(10, 1000)
	q.Close()
	if err := q.Put(context.Background(), batchOf(1)); !errors.Is(err, ErrQueueClosed) {
		t.Errorf("Put after Close = %v; want ErrQueueClosed", err)
	}
	if _, ok := <-q.Batches(); ok {
		t.Error("Batches is not closed")
	}
}

func TestQueueCancelledWaiterDoesNotLeakBudget(t *testing.T) {
	q := NewQueue(2, 1<<30)
	ctx := context.Background()
	q.Put(ctx, batchOf(2))
	for range 100 {
		c, cancel := context.WithCancel(ctx)
		go cancel()
		q.Put(c, batchOf(1)) // either admitted then freed below, or cancelled
	}
	// Drain whatever got in.
	for {
		select {
		case b := <-q.Batches():
			q.Done(b)
			continue
		default:
		}
		break
	}
	if r, _, _, _ := q.Usage(); r != 0 {
		t.Errorf("records in use after draining = %d; want 0", r)
	}
}

package flowgo

import "fmt"

// BatchError reports frames of a batch that failed for good: retrying them
// cannot help (a record larger than the broker accepts, say). The frames
// not listed were delivered. The pipeline sends the failed ones to the
// dead-letter file and counts them as lost.
type BatchError struct {
	// Failed holds frame indices (see Batch.Frame), in increasing order.
	Failed []int
	// Reasons holds one error per entry of Failed.
	Reasons []error
}

func (e *BatchError) Error() string {
	if len(e.Failed) == 0 {
		return "no frame failed"
	}
	return fmt.Sprintf("%d frame(s) failed for good, first: frame %d: %v", len(e.Failed), e.Failed[0], e.Reasons[0])
}

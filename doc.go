// Package flowgo holds the format-neutral types every flowgo component shares:
// the Record a decoder fills and an encoder reads, the Batch that travels on
// the pipeline's queue, the Arena that owns a batch's bytes, the Queue
// that bounds how much the pipeline holds, and the Framing of the byte
// streams inputs read and outputs write.
//
// The package is a leaf: it imports nothing else from flowgo, so decoders,
// encoders, inputs and outputs can all depend on it.
package flowgo

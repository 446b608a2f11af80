package capnp

// The layout of Flowgger's record.capnp (file @0xe5fbb19e9e69110b), as
// `capnp compile -ocapnp record.capnp` prints it; TestRecordLayout checks
// these against that output.
//
//	struct Record {          # 16 bytes, 9 ptrs
//	  ts       @0  :Float64;   bits[0, 64)
//	  hostname @1  :Text;      ptr[0]
//	  facility @2  :UInt8;     bits[64, 72)
//	  severity @3  :UInt8;     bits[72, 80)
//	  appname  @4  :Text;      ptr[1]
//	  procid   @5  :Text;      ptr[2]
//	  msgid    @6  :Text;      ptr[3]
//	  msg      @7  :Text;      ptr[4]
//	  fullMsg  @8  :Text;      ptr[5]
//	  sdId     @9  :Text;      ptr[6]
//	  pairs    @10 :List(Pair); ptr[7]
//	  extra    @11 :List(Pair); ptr[8]
//	}
//	struct Pair {            # 16 bytes, 2 ptrs
//	  key @0 :Text;            ptr[0]
//	  value :union {           tag bits [0, 16)
//	    string @1 :Text;       ptr[1], tag 0
//	    bool   @2 :Bool;       bits[16, 17), tag 1
//	    f64    @3 :Float64;    bits[64, 128), tag 2
//	    i64    @4 :Int64;      bits[64, 128), tag 3
//	    u64    @5 :UInt64;     bits[64, 128), tag 4
//	    null   @6 :Void;       tag 5
//	  }
//	}
const (
	RecordDataWords = 2
	RecordPtrs      = 9

	// Byte offsets in Record's data section.
	RecordTs       = 0
	RecordFacility = 8
	RecordSeverity = 9

	// Record's pointers.
	RecordHostname = 0
	RecordAppname  = 1
	RecordProcid   = 2
	RecordMsgid    = 3
	RecordMsg      = 4
	RecordFullMsg  = 5
	RecordSdID     = 6
	RecordPairs    = 7
	RecordExtra    = 8

	PairDataWords = 2
	PairPtrs      = 2

	PairKey    = 0  // pointer
	PairString = 1  // pointer
	PairTag    = 0  // byte offset of the union tag (UInt16)
	PairBool   = 16 // bit
	PairNumber = 8  // byte offset of f64, i64 and u64

	// The values of Pair's union tag.
	TagString = 0
	TagBool   = 1
	TagF64    = 2
	TagI64    = 3
	TagU64    = 4
	TagNull   = 5
)

// Missing is the value of Record's facility and severity when the record
// has none (Flowgger's FACILITY_MISSING and SEVERITY_MISSING).
const Missing = 0xff

package flowgo

import "unsafe"

func unsafeSizeofRecord() uintptr { return unsafe.Sizeof(Record{}) }

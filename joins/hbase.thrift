// The part of HBase's Thrift2 API (THBaseService) that ctrjoin speaks: point
// reads (get, getMultiple, exists) for feature lookups, getTableDescriptor
// for the start-up check, and writes (put, putMultiple) for loading fixtures.
//
// Wire compatibility with a real HBase Thrift2 server is the whole point, so
// every field id, field type, requiredness, method argument id and exception
// id below is the one HBase declares in its own IDL
// (hbase-thrift/src/main/resources/org/apache/hadoop/hbase/thrift2/hbase.thrift
// in apache/hbase). Structs are complete (but TColumnFamilyDescriptor); the enums and small structs they
// refer to are included so that a reply carrying them still decodes into
// typed fields. Methods, structs and enums we do not use are left out, which
// Thrift tolerates: a peer skips field ids it does not know.
//
// Code is generated at build time (joins/hbase_thrift.cmake); include it as
// "hbase/THBaseService.h" and "hbase/hbase_types.h".

namespace cpp ctrjoin.hbase

// Half-open range of cell timestamps: minStamp <= ts < maxStamp.
struct TTimeRange {
  1: required i64 minStamp,
  2: required i64 maxStamp
}

// Selects a whole family, or one column (family + qualifier).
struct TColumn {
  1: required binary family,
  2: optional binary qualifier,
  3: optional i64 timestamp
}

// One cell version. On a put, an unset timestamp falls back to TPut.timestamp
// and then to the server's clock.
struct TColumnValue {
  1: required binary family,
  2: required binary qualifier,
  3: required binary value,
  4: optional i64 timestamp,
  5: optional binary tags,
  6: optional i8 type
}

// The cells of one row. A row with nothing to return comes back with an empty
// columnValues list and no row.
struct TResult {
  1: optional binary row,
  2: required list<TColumnValue> columnValues,
  3: optional bool stale = false,
  4: optional bool partial = false
}

enum TDurability {
  USE_DEFAULT = 0,
  SKIP_WAL = 1,
  ASYNC_WAL = 2,
  SYNC_WAL = 3,
  FSYNC_WAL = 4
}

struct TAuthorization {
  1: optional list<string> labels
}

struct TCellVisibility {
  1: optional string expression
}

enum TConsistency {
  STRONG = 1,
  TIMELINE = 2
}

// A read of one row. With no columns it reads every family. timestamp, when
// set, wins over timeRange. maxVersions defaults to 1 on the server.
struct TGet {
  1: required binary row,
  2: optional list<TColumn> columns,
  3: optional i64 timestamp,
  4: optional TTimeRange timeRange,
  5: optional i32 maxVersions,
  6: optional binary filterString,
  7: optional map<binary, binary> attributes,
  8: optional TAuthorization authorizations,
  9: optional TConsistency consistency,
  10: optional i32 targetReplicaId,
  11: optional bool cacheBlocks,
  12: optional i32 storeLimit,
  13: optional i32 storeOffset,
  14: optional bool existence_only,
  15: optional binary filterBytes
}

// A write of cells into one row. Field id 4 is unused in HBase's IDL too.
struct TPut {
  1: required binary row,
  2: required list<TColumnValue> columnValues,
  3: optional i64 timestamp,
  5: optional map<binary, binary> attributes,
  6: optional TDurability durability,
  7: optional TCellVisibility cellVisibility
}

// A table's name: "ns:qualifier", or a qualifier in the default namespace.
struct TTableName {
  1: optional binary ns,
  2: required binary qualifier
}

// Of HBase's column family descriptor only what ctrjoin checks at start:
// the versions a family keeps (HBase's VERSIONS; its default is 1). The
// other fields (ids 2..9, 11..20) are skipped when read.
struct TColumnFamilyDescriptor {
  1: required binary name,
  10: optional i32 maxVersions
}

struct TTableDescriptor {
  1: required TTableName tableName,
  2: optional list<TColumnFamilyDescriptor> columns
}

// The server failed to do the work (region unavailable, table missing, ...).
exception TIOError {
  1: optional string message
}

// The request itself was bad. HBase declares it only on scanner methods, so
// none of the methods below can receive it; it is kept for the error mapping.
exception TIllegalArgument {
  1: optional string message
}

service THBaseService {
  bool exists(1: required binary table, 2: required TGet tget) throws (1: TIOError io)

  TResult get(1: required binary table, 2: required TGet tget) throws (1: TIOError io)

  // Results are positional: one TResult per TGet, in request order.
  list<TResult> getMultiple(1: required binary table, 2: required list<TGet> tgets)
      throws (1: TIOError io)

  void put(1: required binary table, 2: required TPut tput) throws (1: TIOError io)

  void putMultiple(1: required binary table, 2: required list<TPut> tputs)
      throws (1: TIOError io)

  // HBase 2.x; an older Thrift2 server answers UNKNOWN_METHOD.
  TTableDescriptor getTableDescriptor(1: required TTableName table) throws (1: TIOError io)
}

#ifndef CAIRN_CHIREDIS_SHIM_H
#define CAIRN_CHIREDIS_SHIM_H
// Only hiredis's reply reader is used: Cairn does its own networking on SwiftNIO and hands the
// bytes it reads to a redisReader, which turns RESP into redisReply trees.
#include <hiredis/read.h>
#include <hiredis/hiredis.h>
#endif

/* placeholder while the avatar provider is written */
#include "../app/app_int.h"

AVC_API int avc_op_avatar_session(avc_call_t *call)
{ avc__call_error(call, 503, "Service temporarily unavailable"); return AVC_OK; }
AVC_API int avc_op_avatar_voices(avc_call_t *call)
{ avc__call_error(call, 503, "Service temporarily unavailable"); return AVC_OK; }

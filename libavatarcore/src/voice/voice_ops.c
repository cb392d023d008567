/* placeholder while the voice routes are written */
#include "../app/app_int.h"
#include <avatarcore/voice.h>

#define AVC_PH(name) AVC_API int name(avc_call_t *call) \
{ avc__call_error(call, 503, "Service temporarily unavailable"); return AVC_OK; }
AVC_PH(avc_op_voice_chat)
AVC_PH(avc_op_voice_chat_fast)
AVC_PH(avc_op_voice_tts)
AVC_PH(avc_op_voice_stt)
AVC_PH(avc_op_voice_session_delete)
